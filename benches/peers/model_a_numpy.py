#!/usr/bin/env python3
"""Reference model (a) of obasim's benchmarks, written as a health economist would write it
in NumPy: one array per quantity, over all patients of a chunk at once.

Model (scenarios/bench/a-three-state.toml; conventions of docs/DOMAIN.md):

* Population: female with probability 0.5; age at infusion ~ Normal(30, 10) truncated to
  [5, 60]; background death from the US 2015 life table (central death rates m(x), used as
  the hazard on [x, x+1), piecewise constant by single year of age, the last row's rate
  carried on), sampled exactly by inverting the cumulative hazard; nobody lives past age 100.
* Therapy arm: 85% start in `response` (cost 2,000/yr, utility 0.90), 15% in `failure`
  (30,000/yr, utility 0.65). response -> failure at 5%/yr, failure -> death at 2%/yr
  (exponential, clock reset), background death competing from every state.
* Standard care: everyone in `failure`, failure -> death at 2%/yr, same background death
  (the same patients: sex, age and background death time are shared by both arms).
* 50-year horizon; continuous discounting d(t) = (1+r)^-t, exact integrals over sojourns:
  3% for costs and outcomes, 8% for the manufacturer.
* Therapy: list price 2,000,000, administration cost 50,000 at t = 0 (a payer cost of the
  therapy arm, counted in its other costs), cost of goods 400,000 (manufacturer).
* Contracts, on the same therapy-arm patients:
    upfront                 2,000,000 at t = 0
    5 annual installments   400,000 at t = 0,1,2,3,4 while alive (stop at death)
    pay while responding    400,000 at t = 0; at t = 1..4 only if alive and still in
                            response at the due date; after a failed condition, stop
    payment at result       1,000,000 at t = 0; 1,000,000 at t = 2 if in response then
    5-year warranty         2,000,000 at t = 0; on entering `failure` at t <= 5 (t = 0 for
                            patients who start there) refund 2,000,000 * (1 - t/5) at t

Per-patient metrics (obasim's definitions):
    qalys, life_years, other_costs       per arm, discounted (costs at the payer's rate)
    drug_paid         sum of payments (refunds negative) discounted at the payer's rate
    payer_cost        drug_paid + the therapy arm's other costs
    manufacturer_npv  sum of payments discounted at the manufacturer's rate - cost of goods

Usage: python3 model_a_numpy.py --patients N --seed S [--json] [--chunk C]
"""

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "..", "..", "scenarios", "bench", "a-three-state.toml")
LIFE_TABLE = os.path.join(HERE, "..", "..", "scenarios", "data", "lifetable_usa_2015_mx.csv")

# ---- parameters (as in the scenario file) --------------------------------------------------
HORIZON = 50.0
R_COSTS, R_OUTCOMES, R_MANUFACTURER = 0.03, 0.03, 0.08
SHARE_FEMALE = 0.5
AGE_MEAN, AGE_SD, AGE_MIN, AGE_MAX = 30.0, 10.0, 5.0, 60.0
MAX_AGE = 100.0

PRICE = 2_000_000.0
ADMINISTRATION = 50_000.0
COGS = 400_000.0

P_RESPONSE = 0.85
COST_RESPONSE, UTIL_RESPONSE = 2_000.0, 0.90
COST_FAILURE, UTIL_FAILURE = 30_000.0, 0.65
RATE_LOSS_OF_RESPONSE = 0.05   # response -> failure
RATE_DISEASE_DEATH = 0.02      # failure -> dead

INSTALLMENT_TIMES = np.arange(5.0)        # 0, 1, 2, 3, 4
INSTALLMENT_SHARE = 1.0 / 5.0
MILESTONE_SHARES = (0.5, 0.5)             # at 0, and at 2 if responding
MILESTONE_TIME = 2.0
WARRANTY_WINDOW = 5.0

CONTRACTS = [
    "upfront",
    "5 annual installments",
    "pay while responding",
    "payment at result",
    "5-year warranty",
]
ARMS = ["therapy", "standard_care"]
ARM_METRICS = ["qalys", "life_years", "other_costs"]
CONTRACT_METRICS = ["drug_paid", "payer_cost", "manufacturer_npv"]


def check_scenario(path):
    """Fails loudly if the scenario file no longer matches the constants above."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11: skip the check
        return
    with open(path, "rb") as f:
        sc = tomllib.load(f)

    def v(x):  # an uncertain parameter {dist = .., mean = ..} takes its mean outside a PSA
        return x["mean"] if isinstance(x, dict) else x

    sim, pop, th = sc["simulation"], sc["population"], sc["therapy"]
    age = pop["age_distribution"]
    therapy = {s["name"]: s for s in sc["arms"][0]["states"]}
    expected = [
        (sim["horizon"], HORIZON),
        (sim["discount"]["costs"], R_COSTS),
        (sim["discount"]["outcomes"], R_OUTCOMES),
        (sim["discount"]["manufacturer"], R_MANUFACTURER),
        (pop["share_female"], SHARE_FEMALE),
        ((age["mean"], age["sd"], age["min"], age["max"]), (AGE_MEAN, AGE_SD, AGE_MIN, AGE_MAX)),
        (pop["max_age"], MAX_AGE),
        ((th["list_price"], th["administration_cost"], th["cost_of_goods"]),
         (PRICE, ADMINISTRATION, COGS)),
        ((therapy["response"]["initial"], v(therapy["response"]["cost"]),
          v(therapy["response"]["utility"])), (P_RESPONSE, COST_RESPONSE, UTIL_RESPONSE)),
        ((v(therapy["failure"]["cost"]), v(therapy["failure"]["utility"])),
         (COST_FAILURE, UTIL_FAILURE)),
        (tuple(v(t["time"]["rate"]) for t in sc["arms"][0]["transitions"]),
         (RATE_LOSS_OF_RESPONSE, RATE_DISEASE_DEATH)),
        ([c["name"] for c in sc["contracts"]], CONTRACTS),
    ]
    for got, want in expected:
        if got != want and tuple(np.atleast_1d(got)) != tuple(np.atleast_1d(want)):
            sys.exit(f"model_a_numpy.py is out of step with {path}: {got!r} != {want!r}")


# ---- life table ------------------------------------------------------------------------------
def load_life_table(path):
    """Knot ages and cumulative hazards H(age) at the knots, per sex (m(x) is the hazard)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ages = np.array([float(r["Age"]) for r in rows])
    tables = {}
    for sex in ("Female", "Male"):
        m = np.array([float(r[sex]) for r in rows])
        knots = np.append(ages, ages[-1] + 1.0)
        cum = np.concatenate(([0.0], np.cumsum(m)))
        tables[sex] = (knots, cum, m[-1])
    return tables


def background_death_age(table, age, e):
    """Age at which the cumulative hazard from `age` reaches the Exp(1) draw `e`."""
    knots, cum, last_rate = table
    target = np.interp(age, knots, cum) + e
    death_age = np.interp(target, cum, knots)
    beyond = target > cum[-1]  # past the last row: the last rate carries on
    death_age[beyond] = knots[-1] + (target[beyond] - cum[-1]) / last_rate
    return death_age


# ---- discounting -----------------------------------------------------------------------------
def factor(r, t):
    return (1.0 + r) ** (-t)


def integral(r, a, b):
    """Integral of (1+r)^-t over [a, b]."""
    delta = np.log1p(r)
    return (np.exp(-delta * a) - np.exp(-delta * b)) / delta


# ---- one chunk of patients -------------------------------------------------------------------
def simulate_chunk(rng, n, tables):
    out = {}

    # population (shared by both arms)
    female = rng.random(n) < SHARE_FEMALE
    age = rng.normal(AGE_MEAN, AGE_SD, n)
    bad = (age < AGE_MIN) | (age > AGE_MAX)
    while bad.any():  # truncated normal by resampling
        age[bad] = rng.normal(AGE_MEAN, AGE_SD, bad.sum())
        bad = (age < AGE_MIN) | (age > AGE_MAX)
    e = rng.standard_exponential(n)
    death_age = np.where(female,
                         background_death_age(tables["Female"], age, e),
                         background_death_age(tables["Male"], age, e))
    t_background = np.minimum(death_age, MAX_AGE) - age

    # therapy arm: response -> failure -> dead, background death competing throughout
    responder = rng.random(n) < P_RESPONSE
    t_loss = rng.exponential(1.0 / RATE_LOSS_OF_RESPONSE, n)
    t_disease = rng.exponential(1.0 / RATE_DISEASE_DEATH, n)  # time spent in failure
    leave_response = np.where(responder, np.minimum(t_loss, t_background), 0.0)
    fails = ~responder | (t_loss < t_background)  # enters `failure` (at leave_response)
    t_death = np.where(fails, np.minimum(leave_response + t_disease, t_background),
                       t_background)
    resp_end = np.minimum(leave_response, HORIZON)
    alive_end = np.minimum(t_death, HORIZON)

    qalys_t = (UTIL_RESPONSE * integral(R_OUTCOMES, 0.0, resp_end)
               + UTIL_FAILURE * integral(R_OUTCOMES, resp_end, alive_end))
    ly_t = integral(R_OUTCOMES, 0.0, alive_end)
    other_t = (ADMINISTRATION
               + COST_RESPONSE * integral(R_COSTS, 0.0, resp_end)
               + COST_FAILURE * integral(R_COSTS, resp_end, alive_end))
    out["therapy", "qalys"] = qalys_t
    out["therapy", "life_years"] = ly_t
    out["therapy", "other_costs"] = other_t

    # standard care: failure -> dead, the same background death
    t_sc = rng.exponential(1.0 / RATE_DISEASE_DEATH, n)
    alive_sc = np.minimum(np.minimum(t_sc, t_background), HORIZON)
    ly_sc = integral(R_OUTCOMES, 0.0, alive_sc)
    out["standard_care", "qalys"] = UTIL_FAILURE * ly_sc
    out["standard_care", "life_years"] = ly_sc
    out["standard_care", "other_costs"] = COST_FAILURE * integral(R_COSTS, 0.0, alive_sc)

    # contracts: payments as (n, k) arrays of amounts at fixed times
    dead_at = np.where(t_death < HORIZON, t_death, np.inf)
    def responding(t):  # in `response` at time t (at an event time, the new state counts)
        return responder & (leave_response > t)

    def book(name, times, amounts):
        times = np.asarray(times, dtype=float)
        paid = amounts @ factor(R_COSTS, times) if times.ndim == 1 else \
            (amounts * factor(R_COSTS, times)).sum(axis=1)
        revenue = amounts @ factor(R_MANUFACTURER, times) if times.ndim == 1 else \
            (amounts * factor(R_MANUFACTURER, times)).sum(axis=1)
        out[name, "drug_paid"] = paid
        out[name, "payer_cost"] = paid + other_t
        out[name, "manufacturer_npv"] = revenue - COGS

    book("upfront", [0.0], np.full((n, 1), PRICE))

    alive = INSTALLMENT_TIMES[None, :] < dead_at[:, None]
    book("5 annual installments", INSTALLMENT_TIMES, INSTALLMENT_SHARE * PRICE * alive)

    # from year 1 each installment needs the patient responding; the first failure stops them
    paying = alive.copy()
    paying[:, 1:] &= responder[:, None] & (leave_response[:, None] > INSTALLMENT_TIMES[1:])
    paying = np.logical_and.accumulate(paying, axis=1)
    book("pay while responding", INSTALLMENT_TIMES, INSTALLMENT_SHARE * PRICE * paying)

    book("payment at result", [0.0, MILESTONE_TIME],
         np.column_stack([np.full(n, MILESTONE_SHARES[0] * PRICE),
                          MILESTONE_SHARES[1] * PRICE * responding(MILESTONE_TIME)]))

    # warranty: `never_failed` fails on entering `failure` (at 0 for non-responders)
    t_fail = np.where(fails, leave_response, np.inf)
    covered = t_fail <= min(WARRANTY_WINDOW, HORIZON)
    refund = np.where(covered, PRICE * np.clip(1.0 - t_fail / WARRANTY_WINDOW, 0.0, 1.0), 0.0)
    t_refund = np.where(covered, t_fail, 0.0)
    book("5-year warranty", np.column_stack([np.zeros(n), t_refund]),
         np.column_stack([np.full(n, PRICE), -refund]))
    return out


# ---- streaming mean and variance over chunks (Chan et al.) -----------------------------------
class Moments:
    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x):
        nb = x.size
        mb = float(x.mean())
        m2b = float(((x - mb) ** 2).sum())
        n = self.n + nb
        d = mb - self.mean
        self.mean += d * nb / n
        self.m2 += m2b + d * d * self.n * nb / n
        self.n = n

    def sd(self):
        return (self.m2 / (self.n - 1)) ** 0.5 if self.n > 1 else 0.0

    def mcse(self):
        return self.sd() / self.n ** 0.5 if self.n > 0 else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=1_000_000, help="patients per vectorised chunk")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args()
    check_scenario(SCENARIO)

    start = time.perf_counter()
    tables = load_life_table(LIFE_TABLE)
    rng = np.random.default_rng(args.seed)
    moments = {}
    left = args.patients
    while left > 0:
        n = min(left, args.chunk)
        for key, x in simulate_chunk(rng, n, tables).items():
            moments.setdefault(key, Moments()).add(x)
        left -= n
    seconds = time.perf_counter() - start

    rows = []
    for arm in ARMS:
        for m in ARM_METRICS:
            s = moments[arm, m]
            rows.append({"arm": arm, "contract": "", "metric": m, "mean": s.mean,
                         "mcse": s.mcse(), "sd": s.sd()})
    for c in CONTRACTS:
        for m in CONTRACT_METRICS:
            s = moments[c, m]
            rows.append({"arm": "therapy", "contract": c, "metric": m, "mean": s.mean,
                         "mcse": s.mcse(), "sd": s.sd()})

    if args.json:
        json.dump({"patients": args.patients, "seed": args.seed, "seconds": seconds,
                   "numpy": np.__version__, "results": rows}, sys.stdout, indent=1)
        print()
        return
    print(f"model (a), NumPy peer: {args.patients} patients, seed {args.seed}, "
          f"{seconds:.3f} s ({1e9 * seconds / max(args.patients, 1):.0f} ns/patient)")
    print(f"{'arm':<14} {'contract':<22} {'metric':<17} {'mean':>16} {'mcse':>12}")
    for r in rows:
        print(f"{r['arm']:<14} {r['contract']:<22} {r['metric']:<17} "
              f"{r['mean']:>16.6g} {r['mcse']:>12.4g}")


if __name__ == "__main__":
    main()
