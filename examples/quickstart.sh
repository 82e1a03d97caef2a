#!/usr/bin/env bash
# The whole of sweepd on one machine: a coordinator, a sweep, two workers, the best run.
# Run from the repository root after installing sweepd: bash examples/quickstart.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d "${TMPDIR:-/tmp}/sweepd-quickstart.XXXXXX")
port=${SWEEPD_QUICKSTART_PORT:-50551}
export SWEEPD_COORDINATOR=127.0.0.1:$port
# The coordinator writes its token into its state dir; clients and workers read it from there.
export SWEEPD_STATE_DIR=$state
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== coordinator serve --port $port --state-dir $state"
coordinator serve --port "$port" --state-dir "$state" >"$state/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q "listening on" "$state/coordinator.log" 2>/dev/null && break
  sleep 0.1
done
grep "listening on" "$state/coordinator.log" || { cat "$state/coordinator.log"; exit 1; }

echo "== sweep create examples/sweep.yaml"
sweep_id=$(sweep create "$here/sweep.yaml")
echo "sweep $sweep_id"

echo "== two workers: worker join --sweep $sweep_id"
for i in 1 2; do
  worker join --sweep "$sweep_id" --workdir "$here" --worker-id "quickstart-$i" \
    >"$state/worker-$i.log" 2>&1 &
  pids+=($!)
done
wait "${pids[1]}" "${pids[2]}"   # workers exit by themselves when the sweep finishes

echo "== sweep runs $sweep_id"
sweep runs "$sweep_id"
echo
echo "== sweep show $sweep_id"
sweep show "$sweep_id"
