#!/usr/bin/env bash
# Runs obasim and the NumPy peer (model_a_numpy.py) on reference model (a) at the same sizes;
# prints the times, the speed ratio numpy/obasim, and the agreement of the means (z-scores
# within Monte Carlo error). Not run by CI.
#
# Usage: benches/peers/compare.sh [SIZE ...]          (default: 100000 1000000)
# Environment:
#   OBASIM=path   use this obasim binary instead of building with `cargo build --release`
#   SEED=s        seed for both (default 1)
#   REPEATS=k     time each run k times and keep the fastest (default 1)
#   THREADS=t     "all cores" thread count for obasim (default: nproc)
#   PYTHON=path   a python3 with numpy (default: python3 if it has numpy, else a venv in
#                 benches/peers/.venv, created with numpy on first use)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCENARIO="$ROOT/scenarios/bench/a-three-state.toml"

if [[ -z "${OBASIM:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    OBASIM="$ROOT/target/release/obasim"
fi

if [[ -z "${PYTHON:-}" ]]; then
    if python3 -c 'import numpy' 2>/dev/null; then
        PYTHON=python3
    else
        if [[ ! -x "$HERE/.venv/bin/python" ]] || ! "$HERE/.venv/bin/python" -c 'import numpy' 2>/dev/null; then
            echo "creating $HERE/.venv with numpy" >&2
            python3 -m venv "$HERE/.venv"
            "$HERE/.venv/bin/pip" install --quiet numpy
        fi
        PYTHON="$HERE/.venv/bin/python"
    fi
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

export OBASIM SCENARIO WORK
export PEER="$HERE/model_a_numpy.py"
export SEED="${SEED:-1}" REPEATS="${REPEATS:-1}" THREADS="${THREADS:-$(nproc)}"
export SIZES="${*:-100000 1000000}"

"$PYTHON" - <<'EOF'
import csv, json, math, os, platform, subprocess, sys, time

obasim, scenario, work, peer = (os.environ[k] for k in ("OBASIM", "SCENARIO", "WORK", "PEER"))
seed, repeats, threads = os.environ["SEED"], int(os.environ["REPEATS"]), os.environ["THREADS"]
sizes = [int(float(s)) for s in os.environ["SIZES"].split()]

# (arm, contract in obasim's summary.csv, metric) -> peer row (arm, contract, metric)
ARM_METRICS = ["qalys", "life_years", "other_costs"]
CONTRACTS = ["upfront", "5 annual installments", "pay while responding",
             "payment at result", "5-year warranty"]
CONTRACT_METRICS = ["drug_paid", "payer_cost", "manufacturer_npv"]
COMPARED = ([("therapy", m) for m in ARM_METRICS] + [("standard_care", m) for m in ARM_METRICS]
            + [(c, m) for c in CONTRACTS for m in CONTRACT_METRICS])


def timed(cmd):
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
        best, out = min(best, dt), p.stdout
    return best, out


def run_obasim(n, t):
    out = os.path.join(work, f"obasim-{n}-{t}")
    secs, _ = timed([obasim, "run", scenario, "--patients", str(n), "--seed", seed,
                     "--no-plots", "--quiet", "--force", "--threads", str(t), "--out", out])
    res = {}
    with open(os.path.join(out, "summary.csv"), newline="") as f:
        for r in csv.DictReader(f):
            key = (r["arm"], r["metric"]) if r["metric"] in ARM_METRICS else (r["contract"], r["metric"])
            if r["arm"] == "therapy" or r["metric"] in ARM_METRICS:
                res.setdefault(key, (float(r["mean"]), float(r["mcse"])))
    return secs, res


def run_peer(n):
    best, res = math.inf, None
    for _ in range(repeats):
        wall, out = timed([sys.executable, peer, "--patients", str(n), "--seed", seed, "--json"])
        j = json.loads(out)
        if j["seconds"] < best:
            best = j["seconds"]
            res = {(r["contract"] or r["arm"], r["metric"]): (r["mean"], r["mcse"])
                   for r in j["results"]}
    return best, wall, res


def z_score(a, sa, b, sb):
    se = math.hypot(sa, sb)
    if se == 0.0:
        return 0.0 if abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0) else math.inf
    return (a - b) / se


import numpy
print(f"model (a): {scenario}")
print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
      f"{platform.release()}; python {platform.python_version()}, numpy {numpy.__version__}; "
      f"seed {seed}; best of {repeats}")
print()
timing, agreement, bad = [], [], 0
for n in sizes:
    t1, r1 = run_obasim(n, 1)
    tn, rn = run_obasim(n, threads)
    if r1 != rn:
        print(f"warning: obasim results at {n} differ between 1 and {threads} threads")
    tp, tp_wall, rp = run_peer(n)
    timing.append((n, t1, tn, tp, tp_wall))
    for key in COMPARED:
        (a, sa), (b, sb) = rn[key], rp[key]
        z = z_score(a, sa, b, sb)
        bad += abs(z) > 4
        agreement.append((n, key, a, sa, b, sb, z))

print("Times in seconds. obasim: the whole `obasim run` process, including reading the scenario"
      " and writing results;\nnumpy: the simulation (after `import numpy`), the whole python"
      " process in brackets. Ratio = numpy time / obasim time (> 1: obasim faster).")
hdr = (f"{'patients':>10} {'obasim 1T':>10} {'obasim ' + threads + 'T':>10} {'numpy':>16} "
       f"{'numpy/obasim 1T':>16} {'numpy/obasim ' + threads + 'T':>16}")
print(hdr)
print("-" * len(hdr))
for n, t1, tn, tp, tpw in timing:
    print(f"{n:>10} {t1:>10.3f} {tn:>10.3f} {tp:>7.3f} ({tpw:>6.3f}) {tp / t1:>16.2f} {tp / tn:>16.2f}")
print()
print("Agreement of the means (obasim mean ± MCSE vs numpy mean ± MCSE; z = diff / combined MCSE)")
hdr = (f"{'patients':>10} {'arm / contract':<22} {'metric':<17} {'obasim':>26} {'numpy':>26} "
       f"{'z':>7}")
print(hdr)
print("-" * len(hdr))
for n, (who, m), a, sa, b, sb, z in agreement:
    flag = "  <-- |z| > 4" if abs(z) > 4 else ""
    print(f"{n:>10} {who:<22} {m:<17} {a:>15.8g} ± {sa:<8.3g} {b:>15.8g} ± {sb:<8.3g} "
          f"{z:>7.2f}{flag}")
print()
zs = [abs(r[-1]) for r in agreement]
print(f"{len(agreement)} comparisons, max |z| = {max(zs):.2f}, {bad} with |z| > 4")
sys.exit(1 if bad else 0)
EOF
