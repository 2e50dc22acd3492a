#!/usr/bin/env bash
# CI: start the real server, make some traffic, and check /metrics with Prometheus's own
# linter (`promtool check metrics`, from Debian's prometheus package).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

command -v promtool >/dev/null || { hgc_log "promtool not found (apt-get install prometheus)"; exit 1; }
work=$(mktemp -d)
cleanup() { hgc_stop; rm -rf "$work"; }
trap cleanup EXIT
port=$(hgc_free_port)
hgc_start "$work" "$port"
base="http://127.0.0.1:$port"

# Traffic so that the labelled families have samples.
curl -fsS "$base/healthz" >/dev/null
curl -s "$base/api/v1/runs/1" >/dev/null
curl -s "$base/api/v1/sensors/nosuch/forecast" >/dev/null
token=$(hgc_sensor_add "$work" ci-metrics)
curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"ts\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"value\": 55.5}" "$base/api/v1/readings" >/dev/null

curl -fsS "$base/metrics" >"$work/metrics.txt"
grep -q '^hygrocast_http_requests_total{' "$work/metrics.txt"
grep -q '^hygrocast_database_up 1' "$work/metrics.txt"
grep -q '^hygrocast_readings_accepted_total{format="json"} 1' "$work/metrics.txt"
grep -q '^process_resident_memory_bytes ' "$work/metrics.txt"
# promtool exits non-zero on a parse error or a lint problem (naming, units, _total).
promtool check metrics <"$work/metrics.txt"
hgc_log "promtool check metrics: OK ($(grep -vc '^#' "$work/metrics.txt") samples)"
