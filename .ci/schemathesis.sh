#!/usr/bin/env bash
# CI: property-based tests of the JSON API with schemathesis (PyPI), driven by the
# server's own OpenAPI document (/api/openapi.json), against the real binary with its
# embedded PostgreSQL. Fails on any 5xx, on a response that does not match the document
# (status, content type, body schema), and on a crash.
#
# Budget: SCHEMATHESIS_EXAMPLES cases per operation (default 60) and SCHEMATHESIS_MAX_TIME
# seconds overall (default 120), so CI stays within a couple of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

command -v st >/dev/null || { hgc_log "schemathesis not found (pip install schemathesis)"; exit 1; }
work=$(mktemp -d)
cleanup() { hgc_stop; rm -rf "$work"; }
trap cleanup EXIT
port=$(hgc_free_port)
hgc_start "$work" "$port"
base="http://127.0.0.1:$port"

# The sensor named in the document's examples, with readings and a trained model, so the
# generated requests reach real data and not only 404s.
sensor=greenhouse-1
auth=()
if token=$(hgc_sensor_add "$work" "$sensor"); then
    auth=(-H "Authorization: Bearer $token")
    python3 - "$base" "$token" <<'PY'
import datetime, json, math, random, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
rng = random.Random(7)  # noise: a pure daily sine gives seasonal naive a zero error scale
rows = []
for h in range(20 * 24, 0, -1):
    ts = now - datetime.timedelta(hours=h)
    rows.append({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "value": round(60 + 15 * math.sin(2 * math.pi * ts.hour / 24) + rng.gauss(0, 2), 2)})
req = urllib.request.Request(base + "/api/v1/readings", data=json.dumps(rows).encode(),
                             headers={"Authorization": "Bearer " + token,
                                      "Content-Type": "application/json"})
with urllib.request.urlopen(req) as r:
    print("seeded", len(rows), "readings:", r.status)
PY
    HYGROCAST_DATABASE__DATA_DIR="$work/data" HYGROCAST_FORECAST__WINDOW_DAYS=5 \
        "$(hgc_binary)" --config config.toml train --sensor "$sensor" --algorithm seasonal_naive >/dev/null
else
    echo "schemathesis: this build cannot seed a sensor ('hygrocast sensor add' or POST /api/v1/readings missing)" >&2
    exit 1
fi

# From the work directory: schemathesis keeps a cache (.schemathesis/) in its cwd.
run_schemathesis() {
    (cd "$work" && st run "$base/api/openapi.json" \
    --url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-60}" \
    --max-time "${SCHEMATHESIS_MAX_TIME:-120}" \
    --seed "${SCHEMATHESIS_SEED:-20261125}" \
    --request-timeout 30 \
    --generation-database none \
    --generation-allow-x00 true \
    --workers 2 \
    --no-color \
    "${auth[@]}") 2>&1 | tee "$work/schemathesis.out"
}

set +e
run_schemathesis
status=$?
# CPython 3.11's ast.parse sometimes raises this SystemError inside schemathesis's own
# coverage phase (an interpreter bug, seen once in CI on a server that then passed 4448
# cases): it is not a finding about our server, so that one error earns one more run.
if [ $status -ne 0 ] && grep -q 'AST constructor recursion depth mismatch' "$work/schemathesis.out"; then
    hgc_log "schemathesis crashed in CPython's ast module, not on our server; running it once more"
    run_schemathesis
    status=$?
fi
set -e
if [ $status -ne 0 ]; then
    hgc_log "schemathesis failed; server log follows"
    tail -n 50 "$work/hygrocast.log" >&2
    exit $status
fi
if grep -q 'panicked' "$work/hygrocast.log"; then
    hgc_log "the server panicked during the run:"
    grep -B2 -A10 'panicked' "$work/hygrocast.log" >&2
    exit 1
fi
hgc_log "schemathesis: OK"
