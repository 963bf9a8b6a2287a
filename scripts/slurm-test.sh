#!/usr/bin/env bash
# Integration test of `obasim slurm` against a real, single-node Slurm started here by hand
# (no systemd): installs Debian's slurmctld, slurmd, slurm-client and munge, starts munged,
# slurmctld and slurmd on private ports and sockets under a temp dir, submits a 4-shard job
# array and its dependent merge job with `obasim slurm --submit`, reruns one task alone with
# the commands documented in shards.sbatch, and checks that every CSV of the merged results
# is byte-identical to a single-process run.
#
# Needs root and apt-get; without them it prints a loud SKIPPED banner and exits 0 (the
# banner is the record). Safe to run twice: packages already installed are not reinstalled,
# and daemons left by an earlier run that was killed are found by their recorded PIDs and
# stopped. Every wait is bounded. Exit 0: passed (or skipped); 1: failed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

SHARDS=4
PATIENTS=20000
DRAWS=3
SCENARIO="$REPO/scenarios/beti-cel-germany.toml"
# Private ports, so that neither a real Slurm on this machine nor a stale test gets in the way.
CTLD_PORT=${OBASIM_SLURM_TEST_CTLD_PORT:-16817}
SLURMD_PORT=${OBASIM_SLURM_TEST_SLURMD_PORT:-16818}
# PIDs of the daemons this script started (kept across runs, to stop stale ones).
REGISTRY=/run/obasim-slurm-test.pids

skip() {
  echo
  echo "######################################################################"
  echo "##  SLURM INTEGRATION TEST SKIPPED: $*"
  echo "######################################################################"
  echo
  exit 0
}
fail() {
  echo "SLURM INTEGRATION TEST FAILED: $*" >&2
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t_start=$(now)
echo "== Slurm integration test"
[ "$(id -u)" -eq 0 ] || skip "not root (uid $(id -u)): cannot install and start Slurm"
command -v apt-get >/dev/null 2>&1 || skip "apt-get is not available"

# --- packages -----------------------------------------------------------------------------
export PATH="$PATH:/usr/sbin:/sbin"
have_all() {
  for c in munged slurmctld slurmd sbatch sinfo scontrol scancel; do
    command -v "$c" >/dev/null 2>&1 || return 1
  done
}
if have_all; then
  echo "== Slurm and munge already installed"
else
  echo "== apt-get install slurmctld slurmd slurm-client munge"
  t=$(now)
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout 600 apt-get update -q >/tmp/obasim-slurm-apt.log 2>&1 ||
    ! timeout 900 apt-get install -y -q slurmctld slurmd slurm-client munge >>/tmp/obasim-slurm-apt.log 2>&1; then
    tail -20 /tmp/obasim-slurm-apt.log || true
    skip "apt-get update/install of slurmctld slurmd slurm-client munge failed (log above)"
  fi
  have_all || skip "the Slurm packages installed but their commands are missing"
  echo "   installed in $(since "$t") s"
fi
for c in runuser timeout; do
  command -v "$c" >/dev/null 2>&1 || fail "$c is missing"
done
id munge >/dev/null 2>&1 || fail "no user munge after installing munge"

# --- stale daemons of an earlier run (killed before its trap ran) ------------------------
stop_pid() { # pid name: TERM, wait up to 5 s, then KILL; only if it still is that daemon
  local pid=$1 name=$2 i
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    [ -e "/proc/$pid" ] || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
if [ -s "$REGISTRY" ]; then
  echo "== stopping daemons left by an earlier run"
  while read -r pid name; do
    case "$pid" in
      dir)
        case "$name" in /tmp/obasim-slurm-test.*) ;; *) continue ;; esac
        # Job step daemons of that cluster outlive its slurmd: theirs are the ones with a
        # file open in its directory.
        for p in /proc/[0-9]*; do
          [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
          if ls -l "$p/fd" 2>/dev/null | grep -qF "$name/"; then
            stop_pid "${p#/proc/}" slurmstepd
          fi
        done
        rm -rf "$name"
        ;;
      [0-9]*) stop_pid "$pid" "$name" ;;
    esac
  done <"$REGISTRY"
fi
: >"$REGISTRY"

# --- build ----------------------------------------------------------------------------------
echo "== cargo build --release --locked"
t=$(now)
timeout 1800 cargo build --release --locked -q || fail "cargo build --release failed"
OBASIM="$REPO/target/release/obasim"
echo "   built in $(since "$t") s"

# --- the cluster ----------------------------------------------------------------------------
T=$(mktemp -d /tmp/obasim-slurm-test.XXXXXX)
chmod 755 "$T"
echo "dir $T" >>"$REGISTRY"
PIDS=()
JOBS=()
cleanup() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ] && [ -n "${T:-}" ]; then
    for f in "$T"/log/*.log "$T"/*/logs/*; do
      [ -f "$f" ] || continue
      echo "---- $f (last 30 lines)"
      tail -30 "$f"
    done
  fi
  if [ "${#JOBS[@]}" -gt 0 ] && [ -n "${SLURM_CONF:-}" ]; then
    timeout 10 scancel "${JOBS[@]}" >/dev/null 2>&1
  fi
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid ${PIDS[i]}
  done
  [ -n "${T:-}" ] && rm -rf "$T"
  : >"$REGISTRY"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
started() { # pid name
  PIDS+=("$1 $2")
  echo "$1 $2" >>"$REGISTRY"
}

mkdir -p "$T/munge" "$T/log" "$T/state" "$T/spool"
chown munge: "$T/munge"
chmod 755 "$T/munge"
KEY=/etc/munge/munge.key
if [ ! -s "$KEY" ]; then
  echo "== creating a munge key"
  mkdir -p /etc/munge
  if [ -x /usr/sbin/mungekey ]; then
    /usr/sbin/mungekey --create --keyfile="$KEY" --force
  else
    create-munge-key -f
  fi
fi
# munged wants the key owned by its user, mode 0400: use a private copy.
cp "$KEY" "$T/munge/munge.key"
chown munge: "$T/munge/munge.key"
chmod 400 "$T/munge/munge.key"
SOCKET="$T/munge/munge.socket"

mem_avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
real_mem=$((mem_avail * 9 / 10))
export SLURM_CONF="$T/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=obasimtest
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
ReturnToService=2
MinJobAge=600
MailProg=/bin/true
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost CPUs=$(nproc) RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

echo "== starting munged, slurmctld, slurmd"
t_daemons=$(now)
# The daemons run in the foreground of background jobs, stdio to log files (never this
# script's output, which would keep a pipe reading it open).
runuser -u munge -- /usr/sbin/munged --foreground --socket="$SOCKET" \
  --key-file="$T/munge/munge.key" --pid-file="$T/munge/munged.pid" \
  --seed-file="$T/munge/munged.seed" --log-file="$T/log/munged.log" \
  </dev/null >>"$T/log/munged.out.log" 2>&1 &
started $! runuser
timeout 10 bash -c "until [ -S '$SOCKET' ] && [ -s '$T/munge/munged.pid' ]; do sleep 0.05; done" ||
  fail "munged did not create its socket in 10 s"
started "$(cat "$T/munge/munged.pid")" munged
slurmctld -D -c -f "$SLURM_CONF" </dev/null >>"$T/log/slurmctld.out.log" 2>&1 &
started $! slurmctld
slurmd -D -N localhost -f "$SLURM_CONF" </dev/null >>"$T/log/slurmd.out.log" 2>&1 &
started $! slurmd
state=""
for _ in $(seq 300); do
  state=$(timeout 5 sinfo -h -N -o %T 2>/dev/null | head -1 || true)
  [ "$state" = "idle" ] && break
  sleep 0.1
done
[ "$state" = "idle" ] || fail "the node is not idle after 30 s (sinfo: '${state}')"
time_daemons=$(since "$t_daemons")
echo "   node idle after $time_daemons s"

# --- job state helpers ------------------------------------------------------------------------
# States of a job (one line per array task), from slurmctld (no accounting needed).
job_states() { timeout 10 scontrol -o show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
wait_job() { # id tasks seconds: wait until all are finished; fail unless all COMPLETED
  local id=$1 want=$2 limit=$3 t0 states
  t0=$(date +%s)
  while :; do
    states=$(job_states "$id" || true)
    if [ "$(grep -c . <<<"$states")" -ge "$want" ] &&
      ! grep -qvE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$' <<<"$states"; then
      break
    fi
    [ $(($(date +%s) - t0)) -lt "$limit" ] || {
      timeout 10 scontrol show job "$id" || true
      fail "job $id not finished after $limit s (states: $(tr '\n' ' ' <<<"$states"))"
    }
    sleep 0.1
  done
  if grep -qv '^COMPLETED$' <<<"$states"; then
    timeout 10 scontrol show job "$id" || true
    fail "job $id did not complete (states: $(tr '\n' ' ' <<<"$states"))"
  fi
}

compare() { # merged single: every CSV byte-identical, the same set of CSVs
  local merged=$1 single=$2 n=0 f name
  for f in "$single"/*.csv; do
    name=$(basename "$f")
    [ -f "$merged/$name" ] || fail "$name is missing from the merged results"
    if ! cmp "$f" "$merged/$name"; then
      diff "$f" "$merged/$name" | head -20 || true
      fail "$name differs between the Slurm merge and the single-process run"
    fi
    n=$((n + 1))
  done
  for f in "$merged"/*.csv; do
    [ -f "$single/$(basename "$f")" ] || fail "$(basename "$f") is only in the merged results"
  done
  [ "$n" -ge 5 ] || fail "only $n CSV files compared"
  echo "   $n CSV files byte-identical to the single-process run"
}

# --- the array and the merge, submitted by obasim ------------------------------------------
# A space and a quote in the path: the scripts must quote every path (and #SBATCH lines too).
CLUSTER="$T/the cluster's run"
echo "== obasim slurm --shards $SHARDS --patients $PATIENTS --draws $DRAWS --submit"
t_array=$(now)
timeout 60 "$OBASIM" slurm "$SCENARIO" --shards "$SHARDS" --patients "$PATIENTS" \
  --draws "$DRAWS" --out "$CLUSTER" --submit >"$T/submit.out" ||
  fail "obasim slurm --submit failed"
cat "$T/submit.out"
shards_id=$(sed -n 's/^shards job: //p' "$T/submit.out")
merge_id=$(sed -n 's/^merge job: //p' "$T/submit.out")
[ -n "$shards_id" ] && [ -n "$merge_id" ] || fail "no job ids in the output of obasim slurm"
JOBS+=("$shards_id" "$merge_id")
timeout 10 scontrol -o show job "$merge_id" | grep -q "Dependency=afterok:${shards_id}" ||
  fail "the merge job $merge_id does not depend on the array $shards_id (afterok)"
wait_job "$shards_id" "$SHARDS" 180
time_array=$(since "$t_array")
echo "   array of $SHARDS tasks done in $time_array s"
t_merge=$(now)
wait_job "$merge_id" 1 180
time_merge=$(since "$t_merge")
echo "   merge job done $time_merge s after the array"
for i in $(seq 0 $((SHARDS - 1))); do
  [ -s "$CLUSTER/shards/shard-$i/shard.json" ] || fail "no shard.json for task $i"
  [ -f "$CLUSTER/logs/shard-$i.$shards_id.out" ] || fail "no log of task $i in $CLUSTER/logs"
done
[ -f "$CLUSTER/logs/merge.$merge_id.out" ] || fail "no log of the merge job in $CLUSTER/logs"

echo "== single-process run"
t=$(now)
timeout 600 "$OBASIM" run "$SCENARIO" --patients "$PATIENTS" --draws "$DRAWS" --quiet \
  --out "$T/single" || fail "the single-process run failed"
echo "   $(since "$t") s"
compare "$CLUSTER/results" "$T/single"

# --- a failed task rerun alone, as documented in shards.sbatch ---------------------------------
echo "== rerun of task $((SHARDS - 1)) alone, then the merge (the commands in shards.sbatch)"
grep -q "^#   sbatch --array=3 " "$CLUSTER/shards.sbatch" || fail "shards.sbatch does not document the rerun"
rm -rf "$CLUSTER/shards/shard-$((SHARDS - 1))" "$CLUSTER/results"
t=$(now)
rerun_id=$(timeout 60 sbatch --parsable --array=$((SHARDS - 1)) "$CLUSTER/shards.sbatch") ||
  fail "sbatch --array=$((SHARDS - 1)) shards.sbatch failed"
JOBS+=("${rerun_id%%;*}")
wait_job "${rerun_id%%;*}" 1 180
merge2_id=$(timeout 60 sbatch --parsable "$CLUSTER/merge.sbatch") || fail "sbatch merge.sbatch failed"
JOBS+=("${merge2_id%%;*}")
wait_job "${merge2_id%%;*}" 1 180
echo "   rerun and merge in $(since "$t") s"
compare "$CLUSTER/results" "$T/single"

echo
echo "SLURM INTEGRATION TEST PASSED: daemons up in $time_daemons s, $SHARDS-task array $time_array s, merge $time_merge s, whole test $(since "$t_start") s"
