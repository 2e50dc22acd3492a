#!/usr/bin/env bash
# Benchmarks the two page-speed targets with wrk against a release build:
#   - the dashboard with 500 sensors (target: p99 < 50 ms),
#   - a sensor page with 90 days of hourly history and a 5-day forecast, 32 connections
#     (target: p99 < 20 ms).
# Self-contained: runs `hygrocast serve` on its embedded PostgreSQL in a temporary data
# directory, seeds it with SQL (psql on the cluster's socket), trains the models with
# `hygrocast train`, issues one forecast per sensor, then runs wrk. Prints wrk's latency
# distribution. Usage: benches/pages.sh [DURATION, default 20s]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-20s}"
PORT="${BENCH_PORT:-18088}"

if ! command -v wrk >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
cargo build --release --quiet
BIN="$PWD/target/release/hygrocast"

WORK="$(mktemp -d /tmp/hgc-bench.XXXXXX)"
chmod 755 "$WORK" # the embedded cluster runs as an unprivileged user when we are root
export HYGROCAST_DATABASE__DATA_DIR="$WORK/data"
export HYGROCAST_SERVER__BIND="127.0.0.1:$PORT"
export HYGROCAST_SCHEDULER__RETRAIN_ENABLED=false
export HYGROCAST_SCHEDULER__MONITOR_ENABLED=false
export HYGROCAST_LOG__LEVEL=warn
BASE="http://127.0.0.1:$PORT"

"$BIN" serve &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 120); do
    curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fs "$BASE/readyz" >/dev/null

echo "bench: seeding 500 sensors (bench-000: 90 days hourly; the others: 10 days)"
PSQL=(psql -h "$WORK/data/socket" -U hygrocast -d hygrocast -v ON_ERROR_STOP=1 -q)
"${PSQL[@]}" <<'SQL'
INSERT INTO sensors (name, kind, unit, location, token_hash)
SELECT format('bench-%s', lpad(i::text, 3, '0')), 'humidity', '%RH', 'hall ' || (i % 7),
       sha256(convert_to('bench-token-' || i, 'UTF8'))
FROM generate_series(0, 499) AS i;
INSERT INTO readings (sensor_id, ts, value)
SELECT s.id, t,
       least(100, greatest(0, 60 + 15 * sin(extract(epoch FROM t) / 86400 * 2 * pi() + s.id)
                                 + 5 * sin(extract(epoch FROM t) / 604800 * 2 * pi()) + 4 * random()))
FROM sensors s
CROSS JOIN LATERAL generate_series(
    date_trunc('hour', now()) - CASE WHEN s.name = 'bench-000' THEN interval '90 days' ELSE interval '10 days' END,
    date_trunc('hour', now()), interval '1 hour') AS t;
-- A day of live scores per sensor, as the hourly monitor would have written.
INSERT INTO live_scores (sensor_id, scored_at, window_hours, n, mae_1_24, mase_1_24, coverage_80, coverage_95)
SELECT s.id, now() - make_interval(hours => h), w, 24 * 7, 3 + random(), 0.6 + random() * 0.6, 0.8, 0.95
FROM sensors s, generate_series(0, 23) AS h, (VALUES (24), (168)) AS ws(w);
ANALYZE;
SQL

echo "bench: training (bench-000 with the full backtest, the others get the labelled baseline)"
"$BIN" train --all >/dev/null
# Runs the server's own worker claimed finish there: wait, so no training competes with wrk.
for _ in $(seq 1 900); do
    busy=$("${PSQL[@]}" -tAc "SELECT count(*) FROM training_runs WHERE status IN ('queued', 'running')")
    [ "$busy" = 0 ] && break
    sleep 1
done
echo "bench: issuing one forecast per sensor (stored for the dashboard's next-24 h range)"
for i in $(seq 0 499); do
    curl -fs "$BASE/api/v1/sensors/$(printf 'bench-%03d' "$i")/forecast?horizon=24h" >/dev/null
done

SENSOR_URL="$BASE/sensors/bench-000?horizon=120h&days=90"
curl -fs "$SENSOR_URL" >/dev/null
curl -fs "$BASE/" >/dev/null
echo "bench: page sizes: dashboard $(curl -fs "$BASE/" | wc -c) bytes, sensor page $(curl -fs "$SENSOR_URL" | wc -c) bytes"

echo
echo "== sensor page, 90 days + 5-day forecast, 32 connections (target p99 < 20 ms) =="
wrk -t2 -c32 -d"$DURATION" --latency "$SENSOR_URL"
echo
echo "== dashboard, 500 sensors, 32 connections (target p99 < 50 ms) =="
wrk -t2 -c32 -d"$DURATION" --latency "$BASE/"
