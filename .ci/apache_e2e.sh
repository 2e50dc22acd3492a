#!/usr/bin/env bash
# CI: hygrocast behind a real Apache httpd, configured with deploy/apache/hygrocast.conf,
# exercised through Apache only. Installs Debian's apache2 if missing, runs it on a free
# loopback port from its own ServerRoot in a temporary directory (no systemd, nothing
# system-wide changed), runs hygrocast with server.base_path=/hygrocast behind it, and
# stops both on exit.
#
# Every part is required: an endpoint missing from the build is a failure, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

if ! command -v apache2 >/dev/null && [ ! -x /usr/sbin/apache2 ]; then
    hgc_log "installing apache2"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends apache2 >/dev/null
    # The package may start a system-wide Apache on port 80 where an init system runs;
    # we don't need it.
    (service apache2 stop || true) >/dev/null 2>&1
fi
APACHE=$(command -v apache2 || echo /usr/sbin/apache2)
MODULES=/usr/lib/apache2/modules

work=$(mktemp -d)
conf="$work/apache/httpd.conf"
cleanup() {
    if [ -f "$work/apache/httpd.pid" ]; then
        "$APACHE" -f "$conf" -k stop >/dev/null 2>&1 || kill "$(cat "$work/apache/httpd.pid")" 2>/dev/null || true
        for _ in $(seq 1 20); do [ -f "$work/apache/httpd.pid" ] || break; sleep 0.25; done
    fi
    hgc_stop
    rm -rf "$work"
}
trap cleanup EXIT

failures=0
pass() { echo "ok:      $*"; }
fail() { echo "FAILED:  $*"; failures=$((failures + 1)); }
# check DESCRIPTION COMMAND...: runs COMMAND, reports.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# --- hygrocast, published under /hygrocast ----------------------------------------------
port=$(hgc_free_port)
hgc_start "$work" "$port" HYGROCAST_SERVER__BASE_PATH=/hygrocast
direct="http://127.0.0.1:$port"

# --- Apache, with the shipped snippet (only the backend port differs) --------------------
aport=$(hgc_free_port)
mkdir -p "$work/apache"
sed "s#http://127.0.0.1:8080/#http://127.0.0.1:$port/#g" deploy/apache/hygrocast.conf >"$work/apache/hygrocast.conf"
grep -q "127.0.0.1:$port" "$work/apache/hygrocast.conf"
cat >"$conf" <<CONF
ServerRoot "$work/apache"
DefaultRuntimeDir "$work/apache"
PidFile "$work/apache/httpd.pid"
Mutex file:$work/apache default
ServerName 127.0.0.1
Listen 127.0.0.1:$aport
LoadModule mpm_event_module $MODULES/mod_mpm_event.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule alias_module $MODULES/mod_alias.so
LoadModule headers_module $MODULES/mod_headers.so
LoadModule rewrite_module $MODULES/mod_rewrite.so
LoadModule proxy_module $MODULES/mod_proxy.so
LoadModule proxy_http_module $MODULES/mod_proxy_http.so
$( [ "$(id -u)" = 0 ] && printf 'User www-data\nGroup www-data\n' )
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
ErrorLog "$work/apache/error.log"
LogLevel warn
LogFormat "%a \"%r\" %>s %b" short
CustomLog "$work/apache/access.log" short
<VirtualHost 127.0.0.1:$aport>
    Include "$work/apache/hygrocast.conf"
</VirtualHost>
CONF
"$APACHE" -f "$conf" -t
"$APACHE" -f "$conf" -k start
for _ in $(seq 1 40); do
    curl -s -o /dev/null "http://127.0.0.1:$aport/" && break
    sleep 0.25
done
A="http://127.0.0.1:$aport/hygrocast"
hgc_log "apache on 127.0.0.1:$aport in front of hygrocast on $direct"

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
body() { curl -s "$@"; }

# --- Health and the API through Apache ----------------------------------------------------
check "GET /hygrocast/healthz is 200 ok" \
    bash -c "curl -fsS '$A/healthz' | grep -q '\"ok\"'"
check "GET /hygrocast/readyz is 200" test "$(code "$A/readyz")" = 200
check "GET /hygrocast redirects to /hygrocast/" \
    bash -c "curl -s -D - -o /dev/null 'http://127.0.0.1:$aport/hygrocast' | grep -qi '^location: .*/hygrocast/'"
info=$(body "$A/api/v1/info")
check "GET /hygrocast/api/v1/info names the version and schema" \
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["version"] and d["commit"] and d["schema_version"] >= 1' "$info"
check "GET /hygrocast/api/openapi.json is an OpenAPI 3 document" \
    bash -c "curl -fsS '$A/api/openapi.json' | grep -q '\"openapi\":\"3'"
check "GET /hygrocast/metrics is Prometheus text" \
    bash -c "curl -fsS '$A/metrics' 2>/dev/null | grep -q '^hygrocast_http_requests_total{'"
check "unknown sensor: 404 JSON error through Apache" \
    bash -c "curl -s '$A/api/v1/sensors/nosuch/forecast' | grep -q '\"status\":404'"
check "a body over ingest.max_body (8 MiB) is refused by Apache with 413" \
    test "$(head -c 9000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- "$A/api/v1/readings")" = 413

# --- The real client address: X-Forwarded-For from Apache, spoofing ignored -------------
# Requests from 127.0.0.2 (not a trusted proxy): Apache appends it to X-Forwarded-For and
# hygrocast, trusting Apache on 127.0.0.1 only, logs 127.0.0.2, not the spoofed entry.
probe="/probe-$RANDOM$RANDOM"
curl -s -o /dev/null --interface 127.0.0.2 -H 'X-Forwarded-For: 198.51.100.66' "$A$probe" || true
sleep 0.3
check "hygrocast logs the real client behind Apache (127.0.0.2), not a spoofed X-Forwarded-For" \
    bash -c "grep -F '$probe' '$work/hygrocast.log' | grep -q 'client=127.0.0.2'"
probe2="/probe-direct-$RANDOM$RANDOM"
curl -s -o /dev/null --interface 127.0.0.2 -H 'X-Forwarded-For: 198.51.100.66' "$direct$probe2" || true
sleep 0.3
check "X-Forwarded-For from an untrusted peer is ignored" \
    bash -c "grep -F '$probe2' '$work/hygrocast.log' | grep -q 'client=127.0.0.2'"

# --- A sensor posts readings (JSON and line protocol) through Apache ----------------------
sensor=e2e-greenhouse
have_ingest=0
if hgc_route_exists POST "$direct/api/v1/readings" && token=$(hgc_sensor_add "$work" "$sensor"); then
    have_ingest=1
    readings=$(python3 - <<'PY'
import datetime, json, math, random
now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
rng = random.Random(7)  # noise: a pure daily sine gives seasonal naive a zero error scale
rows = []
for h in range(20 * 24, 1, -1):
    ts = now - datetime.timedelta(hours=h)
    rows.append({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": round(60 + 15 * math.sin(2 * math.pi * ts.hour / 24) + rng.gauss(0, 2), 2)})
print(json.dumps(rows))
PY
)
    check "POST /hygrocast/api/v1/readings (JSON batch) is accepted" \
        bash -c "curl -fsS -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' --data-binary '$readings' '$A/api/v1/readings' | grep -q '\"accepted\":479'"
    last=$(( $(date -u +%s) / 3600 * 3600 - 3600 ))
    check "POST /hygrocast/api/v2/write (line protocol) is accepted" \
        test "$(code -H "Authorization: Token $token" --data-binary "env,room=a humidity=57.5 $last" "$A/api/v2/write?org=x&bucket=y&precision=s")" = 204
    check "POST /hygrocast/write (InfluxDB 1.x line protocol, p=token) is accepted" \
        test "$(code --data-binary "env,room=a humidity=58.5 $((last + 1800))" "$A/write?db=x&precision=s&p=$token")" = 204
    check "a wrong token is refused with 401 through Apache" \
        test "$(code -H 'Authorization: Bearer wrong' -H 'Content-Type: application/json' -d '{"ts":"2026-01-01T00:00:00Z","value":50}' "$A/api/v1/readings")" = 401
    check "the readings API returns what was posted" \
        bash -c "curl -fsS '$A/api/v1/sensors/$sensor/readings' | grep -q '58.5'"
else
    fail "sensor posts readings (JSON, line protocol): POST /api/v1/readings or 'hygrocast sensor add' not in this build (ingestion not merged)"
fi

# --- The forecast API ---------------------------------------------------------------------
if [ $have_ingest = 1 ]; then
    HYGROCAST_DATABASE__DATA_DIR="$work/data" HYGROCAST_FORECAST__WINDOW_DAYS=5 \
        "$(hgc_binary)" --config config.toml train --sensor "$sensor" --algorithm seasonal_naive >/dev/null
    fc=$(body "$A/api/v1/sensors/$sensor/forecast?horizon=24h")
    check "GET /hygrocast/api/v1/sensors/$sensor/forecast?horizon=24h has 24 steps with intervals" \
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); s=d["steps"]; assert len(s)==24 and all(x["lo95"]<=x["value"]<=x["hi95"] for x in s), d' "$fc"
    check "GET /hygrocast/api/v1/sensors/$sensor/models names the champion" \
        bash -c "curl -fsS '$A/api/v1/sensors/$sensor/models' | grep -q '\"champion\":{'"
else
    fail "forecast API with data: needs readings posted through ingestion"
fi

# --- Pages: every link stays under /hygrocast/ and loads ----------------------------------
# check_page URL: 200 HTML, and every href/src/action is under /hygrocast/ (or external,
# or a fragment) and answers 200 through Apache.
check_page() {
    local url=$1 html
    html=$(curl -fsS "$url") || { fail "page $url loads"; return; }
    pass "page $url loads"
    python3 - "$url" "http://127.0.0.1:$aport" "$html" <<'PY' && pass "every link of $url is under /hygrocast/ and loads" || fail "links of $url"
import re, sys, urllib.request, urllib.parse
page, origin, html = sys.argv[1], sys.argv[2], sys.argv[3]
links = set(re.findall(r'(?:href|src)="([^"]*)"', html))
# Form targets must stay under the prefix too, but are not fetched (a POST-only route).
actions = set(re.findall(r'action="([^"]*)"', html))
bad = [f"form action {a} is outside /hygrocast/" for a in sorted(actions)
       if not urllib.parse.urlparse(urllib.parse.urljoin(page, a)).path.startswith("/hygrocast/")]
for link in sorted(links):
    if link.startswith(("#", "mailto:", "http://", "https://", "data:")) and not link.startswith(origin):
        continue
    absolute = urllib.parse.urljoin(page, link)
    path = urllib.parse.urlparse(absolute).path
    if not path.startswith("/hygrocast/"):
        bad.append(f"{link} -> {path} is outside /hygrocast/")
        continue
    try:
        with urllib.request.urlopen(absolute) as r:
            if r.status != 200:
                bad.append(f"{link}: {r.status}")
    except Exception as e:  # 4xx/5xx raise
        bad.append(f"{link}: {e}")
print(f"{len(links)} links checked on {page}")
for b in bad:
    print("  bad link:", b)
sys.exit(1 if bad else 0)
PY
}
if [ "$(code "$direct/")" = 200 ] && curl -s -o /dev/null -w '%{content_type}' "$direct/" | grep -q text/html; then
    check_page "$A/"
    if [ $have_ingest = 1 ]; then
        check_page "$A/sensors/$sensor"
        check_page "$A/models"
        check_page "$A/runs/1"
    else
        fail "sensor page: needs a sensor with readings (ingestion not merged)"
    fi
else
    fail "dashboard and sensor pages: GET / is not an HTML page in this build (pages not merged)"
fi

echo
echo "apache e2e: $failures failed"
if [ $failures -ne 0 ]; then
    echo "--- apache error log"; tail -n 30 "$work/apache/error.log" || true
    echo "--- hygrocast log"; tail -n 30 "$work/hygrocast.log" || true
    exit 1
fi
