#!/usr/bin/env python3
"""Refit hesim's reversible illness-death example (man-roxygen/example-IndivCtstm.R).

For each transition i in 1..4:
    flexsurvreg(Surv(years, status) ~ factor(strategy_id), data = surv_dat,
                subset = (trans == i), dist = "weibull")
flexsurv Weibull: S(t) = exp(-(t/scale)^shape), log(scale) = b0 + b1*I(strategy_id == 2),
coef = (log shape, b0, b1); vcov = inverse observed information on those coordinates.

Inputs (in this directory):
  prothr.RData        -- mstate (cran/mstate 0.3.3) data/prothr.RData
  mstate3_exdata.rda  -- hesim data/mstate3_exdata.rda (the data actually shipped with hesim)
Run: venv/bin/python fit.py   (needs numpy scipy pandas pyreadr rdata; lifelines optional)
"""
import os
import sys

import numpy as np
import pandas as pd
import pyreadr
from scipy import optimize

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------
def rebuild_from_prothr():
    """Replicates hesim data-raw/mstate3_exdata.R (only the columns that matter for the fit)."""
    d = pyreadr.read_r(os.path.join(HERE, "prothr.RData"))["prothr"].copy()
    d["treat"] = d["treat"].astype(str)
    d["Tstart"] = d["Tstart"] / 365.25
    d["Tstop"] = (d["Tstop"] + 1) / 365.25
    d["years"] = d["Tstop"] - d["Tstart"]
    d["strategy_id"] = np.where(d["treat"] == "Placebo", 1.0, 2.0)
    return d


def load_shipped():
    import rdata
    parsed = rdata.parser.parse_file(os.path.join(HERE, "mstate3_exdata.rda"))
    conv = rdata.conversion.convert(parsed)
    m = conv["mstate3_exdata"]
    return m


# ----------------------------------------------------------------------------
# Weibull (flexsurv parameterisation), right-censored log-likelihood
#   z = shape*(log t - mu),  mu = b0 + b1*x
#   log h = log shape - log t + z ; log S = -exp(z)
# ----------------------------------------------------------------------------
def loglik(theta, t, d, x):
    a, b0, b1 = theta
    k = np.exp(a)
    mu = b0 + b1 * x
    z = k * (np.log(t) - mu)
    return np.sum(d * (a - np.log(t) + z) - np.exp(z))


def grad(theta, t, d, x):
    a, b0, b1 = theta
    k = np.exp(a)
    mu = b0 + b1 * x
    z = k * (np.log(t) - mu)
    ez = np.exp(z)
    ga = np.sum(d * (1 + z) - ez * z)
    gmu = k * (ez - d)
    return np.array([ga, np.sum(gmu), np.sum(gmu * x)])


def hess(theta, t, d, x):
    a, b0, b1 = theta
    k = np.exp(a)
    mu = b0 + b1 * x
    z = k * (np.log(t) - mu)
    ez = np.exp(z)
    haa = d * z - ez * z * (z + 1)
    ham = -k * d + k * ez * (z + 1)
    hmm = -k * k * ez
    H = np.empty((3, 3))
    H[0, 0] = haa.sum()
    H[0, 1] = H[1, 0] = ham.sum()
    H[0, 2] = H[2, 0] = (ham * x).sum()
    H[1, 1] = hmm.sum()
    H[1, 2] = H[2, 1] = (hmm * x).sum()
    H[2, 2] = (hmm * x * x).sum()
    return H


def fd_hess(theta, t, d, x, h=1e-5):
    """Central finite differences of the analytic gradient (check only)."""
    H = np.empty((3, 3))
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        H[:, j] = (grad(theta + e, t, d, x) - grad(theta - e, t, d, x)) / (2 * h)
    return H


def fit_one(t, d, x):
    # starting values: exponential fit per group (shape = 1)
    r1 = d[x == 0].sum() / t[x == 0].sum()
    r2 = d[x == 1].sum() / t[x == 1].sum()
    th0 = np.array([0.0, -np.log(r1), -np.log(r2) + np.log(r1)])
    f = lambda th: -loglik(th, t, d, x)
    g = lambda th: -grad(th, t, d, x)
    h = lambda th: -hess(th, t, d, x)
    # method 1: Newton trust-region with analytic gradient and Hessian
    r = optimize.minimize(f, th0, jac=g, hess=h, method="trust-exact",
                          options={"gtol": 1e-9, "maxiter": 1000})
    th = r.x
    # polish with a few pure Newton steps
    for _ in range(5):
        th = th - np.linalg.solve(hess(th, t, d, x), grad(th, t, d, x))
    # method 2: Nelder-Mead, derivative-free, from the same start
    r2 = optimize.minimize(f, th0, method="Nelder-Mead",
                           options={"xatol": 1e-12, "fatol": 1e-13, "maxiter": 200000, "maxfev": 200000})
    # method 3: BFGS with numerical gradient (roughly what optim does)
    r3 = optimize.minimize(f, th0, method="BFGS", options={"gtol": 1e-9})
    return th, r, r2, r3


def lifelines_check(t, d, x):
    try:
        from lifelines import WeibullAFTFitter
    except ImportError:
        return None
    df = pd.DataFrame({"T": t, "E": d, "s2": x})
    m = WeibullAFTFitter()
    m.fit(df, duration_col="T", event_col="E")
    p = m.params_
    # lifelines: S = exp(-(t/lambda)^rho), log lambda = lambda_Intercept + lambda_s2*s2, log rho = rho_Intercept
    return np.array([p[("rho_", "Intercept")], p[("lambda_", "Intercept")], p[("lambda_", "s2")]]), m.log_likelihood_


def g10(v):
    return f"{v:.10g}"


def main():
    pd.set_option("display.width", 200)
    reb = rebuild_from_prothr()
    shipped = load_shipped()
    tr = shipped["transitions"]

    # ---- compare rebuilt data with shipped data (sorting differs; compare sorted) ----
    cols = ["from", "to", "trans", "Tstart", "Tstop", "status", "years", "strategy_id"]
    key = ["id"] + cols
    a = reb[key].sort_values(key).reset_index(drop=True)
    b = tr.rename(columns={"patient_id": "id"})[key].sort_values(key).reset_index(drop=True)
    print("rows: prothr-rebuilt", len(a), " shipped", len(b))
    same_shape = a.shape == b.shape
    maxdiff = {c: float(np.max(np.abs(a[c].to_numpy(float) - b[c].to_numpy(float)))) for c in key} if same_shape else None
    print("max |rebuilt - shipped| per column:", maxdiff)
    print("exactly equal:", same_shape and all(v == 0 for v in maxdiff.values()))
    print()

    # ---- counts ----
    print("Patients:", reb["id"].nunique(), " by treat:",
          reb.groupby("treat")["id"].nunique().to_dict())
    print("Rows per transition:")
    print(reb.groupby("trans").size().to_string())
    print("Rows / events per transition x strategy_id:")
    ct = reb.groupby(["trans", "strategy_id"]).agg(rows=("status", "size"), events=("status", "sum"),
                                                   sum_years=("years", "sum"))
    print(ct.to_string())
    print("min years per transition:", reb.groupby("trans")["years"].min().to_dict())
    print()

    # ---- fits ----
    results = {}
    for i in (1, 2, 3, 4):
        s = reb[reb["trans"] == i]
        t = s["years"].to_numpy(float)
        d = s["status"].to_numpy(float)
        x = (s["strategy_id"] == 2).to_numpy(float)
        th, r1, r2, r3 = fit_one(t, d, x)
        H = hess(th, t, d, x)
        Hfd = fd_hess(th, t, d, x)
        V = np.linalg.inv(-H)
        V = (V + V.T) / 2
        eig = np.linalg.eigvalsh(-H)
        ll = loglik(th, t, d, x)
        print(f"=== transition {i}: n = {len(t)}, events = {int(d.sum())} ===")
        print("coef (log shape, log scale intercept, factor(strategy_id)2):")
        print("  ", [g10(v) for v in th])
        print("  full precision:", [repr(float(v)) for v in th])
        print("  gradient at MLE:", grad(th, t, d, x))
        print("  trust-exact:", r1.x, "success", r1.success, "(", r1.message, ") -> then 5 Newton steps")
        print("  Nelder-Mead:", r2.x, " max|diff| =", np.max(np.abs(r2.x - th)))
        print("  BFGS (num. grad):", r3.x, " max|diff| =", np.max(np.abs(r3.x - th)))
        lc = lifelines_check(t, d, x)
        if lc is not None:
            print("  lifelines WeibullAFT:", lc[0], " max|diff| =", np.max(np.abs(lc[0] - th)),
                  " loglik", lc[1])
        print("  loglik:", repr(float(ll)))
        print("  analytic Hessian symmetric:", np.allclose(H, H.T, rtol=0, atol=0),
              " max|H - H_fd| =", np.max(np.abs(H - Hfd)),
              " eigen(-H) =", eig, " PD:", bool(np.all(eig > 0)))
        print("  vcov:")
        for row in V:
            print("    ", [g10(v) for v in row])
        se = np.sqrt(np.diag(V))
        print("  se:", [g10(v) for v in se])
        shape = np.exp(th[0])
        print(f"  shape = {g10(shape)}; scale_soc (strategy 1) = {g10(np.exp(th[1]))};"
              f" scale_new (strategy 2) = {g10(np.exp(th[1] + th[2]))}")
        print()
        results[i] = dict(n=len(t), events=int(d.sum()), coef=th, vcov=V, se=se, loglik=ll,
                          shape=shape, scale1=np.exp(th[1]), scale2=np.exp(th[1] + th[2]),
                          gradnorm=float(np.max(np.abs(grad(th, t, d, x)))),
                          nm=float(np.max(np.abs(r2.x - th))), bfgs=float(np.max(np.abs(r3.x - th))),
                          ll_diff=(float(np.max(np.abs(lc[0] - th))) if lc is not None else None),
                          hfd=float(np.max(np.abs(H - Hfd))), eig=eig)

    # ---- same fits on shipped hesim data (must be identical) ----
    for i in (1, 2, 3, 4):
        s = tr[tr["trans"] == i]
        t = s["years"].to_numpy(float)
        d = s["status"].to_numpy(float)
        x = (s["strategy_id"] == 2).to_numpy(float)
        th, *_ = fit_one(t, d, x)
        print(f"shipped-data fit trans {i}: max|coef diff| vs prothr rebuild = "
              f"{np.max(np.abs(th - results[i]['coef'])):.3g}")
    print()

    # ---- utilities and costs (as shipped) ----
    print("costs$drugs:\n", shipped["costs"]["drugs"])
    print("costs$medical:\n", shipped["costs"]["medical"].to_string())
    print("utility:\n", shipped["utility"].to_string())
    return results


if __name__ == "__main__":
    main()
