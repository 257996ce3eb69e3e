#!/bin/sh
# Runs the real-peer interop suite (tests/tests/interop.rs, interop_restart.rs) N times in a row and writes
# INTEROP.md: peer x scenario x icepeer role x runtime -> passes and median time to
# connected, next to each peer paired with itself.
#
#   sh tests/interop/run_suite.sh [N]        # default N = 5; from anywhere in the repository
#
# Needs the peers .ci/run installs (coturn, libnice, Chromium, aioice in .ci/venv) and root
# for the network namespace Chromium runs in. Exits non-zero if any run failed; a failed
# pairing's logs are kept (their directory is printed in the test output).
#
# The timings are of optimised builds (`--release`: icepeer, the pairing driver), as an
# application ships them; a debug icepeer reacts several times slower to the peer's
# candidates, which matters where the peer races it (see INTEROP.md, relay-only rows).
set -eu
cd "$(dirname "$0")/../.."
N=${1:-5}
case "$N" in ''|*[!0-9]*) echo "usage: $0 [N]" >&2; exit 2;; esac
if [ -x .ci/venv/bin/python ]; then
    PATH="$PWD/.ci/venv/bin:$PATH"
    export PATH
fi
results=$(mktemp /tmp/librice-interop-XXXXXX.jsonl)
logdir=$(mktemp -d /tmp/librice-interop-runs-XXXXXX)
cargo test --release -q -p librice-tests --test interop --test interop_restart --no-run
failed=0
i=1
while [ "$i" -le "$N" ]; do
    start=$(date +%s)
    if LIBRICE_INTEROP_RESULTS="$results" cargo test --release -q -p librice-tests --test interop --test interop_restart -- \
        --test-threads=1 >"$logdir/run-$i.log" 2>&1; then
        echo "run $i/$N: ok ($(($(date +%s) - start)) s)"
    else
        echo "run $i/$N: FAILED ($(($(date +%s) - start)) s); output in $logdir/run-$i.log"
        grep -E "FAILED|panicked|logs kept" "$logdir/run-$i.log" | head -20 || true
        failed=$((failed + 1))
    fi
    i=$((i + 1))
done
python3 tests/interop/report.py "$results" "$N" "$failed" > INTEROP.md
echo "wrote INTEROP.md from $results ($failed of $N runs failed)"
[ "$failed" -eq 0 ]
