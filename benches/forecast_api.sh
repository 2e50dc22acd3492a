#!/usr/bin/env bash
# Forecast API benchmark (issue 6): latency of a 120-step forecast from the champion.
# Prints figures; asserts nothing about speed.
#
#   benches/forecast_api.sh            release build, 20 s of wrk at 1, 8 and 32 connections
#   benches/forecast_api.sh --quick    dev build, 3 s (CI: proves it runs)
#   CONNECTIONS="1 8 32" benches/forecast_api.sh   one wrk run per connection count
#
# Starts `hygrocast serve` on a private PostgreSQL in a temporary directory, registers a
# sensor, backfills 90 days of simulated readings over HTTP (enough for a learned model,
# not the baseline, to serve), trains it with `hygrocast train`, then runs wrk against
# /api/v1/sensors/bench-1/forecast?horizon=120h.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=release DURATION=20 CONNECTIONS=${CONNECTIONS:-1 8 32} DAYS=90
# BENCH_PIN=1: the server on CPU 0, wrk on CPU 1, so the load generator does not steal the
# server's time slices (on a 2-core machine that is what the p99 tail measures otherwise).
SERVER_CPUS=() WRK_CPUS=()
if [ "${BENCH_PIN:-0}" = 1 ]; then SERVER_CPUS=(taskset -c 0) WRK_CPUS=(taskset -c 1); fi
if [ "${1:-}" = --quick ]; then PROFILE=dev DURATION=3 DAYS=20; fi
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

. .ci/lib.sh
BIN=$(HGC_PROFILE=$PROFILE hgc_binary)

WORK=$(mktemp -d /tmp/hgc-fbench.XXXXXX)
chmod 755 "$WORK"
PORT=$((20000 + RANDOM % 20000))
SERVE_PID=""
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill -INT "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

export HYGROCAST_SERVER__BIND="127.0.0.1:$PORT"
export HYGROCAST_SCHEDULER__RETRAIN_ENABLED=false HYGROCAST_SCHEDULER__MONITOR_ENABLED=false
export HYGROCAST_LOG__LEVEL=warn
cd "$WORK"
"${SERVER_CPUS[@]}" "$BIN" serve 2>serve.log &
SERVE_PID=$!
for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
TOKEN=$("$BIN" sensor add --name bench-1 --quiet)
"$BIN" simulate --url "http://127.0.0.1:$PORT" --token "$TOKEN" --backfill "${DAYS}d" \
    --interval 600s --backfill-only --seed 7 >/dev/null
echo "training (${DAYS} days of history):"
/usr/bin/time -f "  train: %e s wall, %M KiB max RSS" "$BIN" train --sensor bench-1
URL="http://127.0.0.1:$PORT/api/v1/sensors/bench-1/forecast?horizon=120h"
{ curl -fs "$URL" || true; } > body.json; head -c 200 body.json; echo " … ($(wc -c < body.json) bytes)"
for c in $CONNECTIONS; do
    threads=$((c < 2 ? 1 : 2))
    echo "wrk: $c connections, ${DURATION} s, 120-step forecast"
    "${WRK_CPUS[@]}" wrk -t$threads -c"$c" -d"${DURATION}s" --latency "$URL" | sed -n '/Latency Distribution/,/Requests\/sec/p'
    # The floor of this machine under the same load: the cheapest route there is. What
    # the forecast adds on top of it is what the forecast path costs.
    echo "wrk: $c connections, ${DURATION} s, /healthz (floor)"
    "${WRK_CPUS[@]}" wrk -t$threads -c"$c" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/healthz" | sed -n '/Latency Distribution/,/Requests\/sec/p'
done
