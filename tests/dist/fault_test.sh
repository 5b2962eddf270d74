#!/bin/sh
# Faults in a data-parallel job (engine/dist): rank 1 of `glia-dist-fault` hangs, is killed or
# throws; the job must end with a non-zero status, an error naming rank 1, and within a few
# timeouts (never an endless hang). Usage: fault_test.sh MPIEXEC FAULT_BIN MODE TIMEOUT_MS
set -u
mpiexec="$1"
bin="$2"
mode="$3"
timeout_ms="$4"
start=$(date +%s)
# The outer timeout only guards the test itself; the job must end long before it.
# --foreground: timeout keeps mpirun in the caller's process group, where OpenMPI's terminal
# handling cannot stop it (SIGTTOU/SIGTTIN) when the test runs from a background job.
out=$(timeout --foreground 60 "$mpiexec" --oversubscribe -np 2 "$bin" "$mode" "$timeout_ms" \
  </dev/null 2>&1)
status=$?
elapsed=$(( $(date +%s) - start ))
echo "$out"
echo "fault_test: mode $mode, exit status $status after $elapsed s"
[ "$status" -ne 0 ] || { echo "fault_test: the job succeeded despite the fault" >&2; exit 1; }
[ "$status" -ne 124 ] || { echo "fault_test: the job hung until the outer timeout" >&2; exit 1; }
echo "$out" | grep -q "rank 1" || { echo "fault_test: no error names rank 1" >&2; exit 1; }
echo "$out" | grep -q "finished: the fault was not detected" &&
  { echo "fault_test: a rank finished as if nothing happened" >&2; exit 1; }
# Two timeouts (the wait, then the diagnosis) plus start-up.
limit=$(( 2 * timeout_ms / 1000 + 15 ))
[ "$elapsed" -le "$limit" ] || { echo "fault_test: took $elapsed s, over $limit s" >&2; exit 1; }
exit 0
