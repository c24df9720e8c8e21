#!/usr/bin/env bash
# The fault and limit tests, longer than CI runs them, on the release build:
#   tests/scripts/faults.sh [KILLS] [REPEATS]
# - the SIGKILL-under-load test with KILLS kills (default 50; CI makes 3),
# - the SIGTERM-under-load, disk-full, concurrency/memory and slow-client tests REPEATS times
#   each (default 10; CI runs each once).
# Every run prints what it tried ("crash test: 50 SIGKILLs, N events acknowledged, 0 lost ...");
# the lines are gathered in target/faults/summary.md (docs/reliability.md quotes them).
set -euo pipefail
cd "$(dirname "$0")/../.."
kills=${1:-50}
repeats=${2:-10}
out=target/faults
mkdir -p "$out"
log="$out/run.log"
: >"$log"

echo "== SIGKILL under load: $kills kills" | tee -a "$log"
HOOKGATE_CRASH_ROUNDS=$kills cargo test --release --locked --test api -- \
    faults::sigkill --nocapture --test-threads 1 2>&1 | tee -a "$log" | grep -E "crash test|test result"

for i in $(seq "$repeats"); do
    echo "== repeat $i of $repeats" | tee -a "$log"
    cargo test --release --locked --test api -- \
        faults::sigterm faults::a_full limits:: --nocapture --test-threads 1 2>&1 \
        | tee -a "$log" | grep -E "graceful stop|disk full|clients x|test result"
done

{
    echo "# Fault runs, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD)"
    echo
    echo "Command: \`tests/scripts/faults.sh $kills $repeats\`"
    echo
    grep -oE "(crash test|graceful stop|disk full|[0-9]+ clients x).*" "$log" | sed 's/^/- /' || true
    echo
    echo "Test results: $(grep -c 'test result: ok' "$log") runs passed, $(grep -c 'test result: FAILED' "$log") failed."
} >"$out/summary.md"
cat "$out/summary.md"
! grep -q "test result: FAILED" "$log"
