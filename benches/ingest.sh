#!/usr/bin/env bash
# Ingestion benchmark (issue 4). Prints figures; asserts nothing about speed.
#
#   benches/ingest.sh            full run, release build (~2 minutes plus the build)
#   benches/ingest.sh --quick    short run on the dev build, for CI: proves it works
#
# One run, one private PostgreSQL (started by `hygrocast serve` in a temporary data
# directory, the same table and indexes as production), five measurements:
#   1. JSON batches of 5,000 from 4 concurrent clients, 1,000,000 readings   -> readings/s
#   2. the same readings as InfluxDB line protocol                          -> readings/s
#   3. one reading per request from 256 connections (wrk, 20 s), spread over
#      the 1,000 sensors' tokens, each request a new row                    -> req/s, p50, p99
#   4. the same rows as 1. with one binary COPY straight into PostgreSQL    -> rows/s
#   5. a bare actix endpoint (parses the same body, no database), same wrk  -> req/s
# and the ratios 1/4, 2/4 and 3/5. The readings table is emptied before 1, 2, 3 and 4.
# Needs wrk (apt-get install wrk) and the PostgreSQL server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
PROFILE=release
for arg in "$@"; do
    case "$arg" in
        --quick) MODE=quick; PROFILE=dev ;;
        --release) PROFILE=release ;;
        *) echo "usage: $0 [--quick] [--release]" >&2; exit 2 ;;
    esac
done

if [ "$MODE" = full ]; then
    READINGS=1000000 SENSORS=1000 DURATION=20
else
    READINGS=20000 SENSORS=100 DURATION=3
fi
BATCH=5000 CLIENTS=4 CONNECTIONS=256 THREADS=2

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

if [ "$PROFILE" = release ]; then
    cargo build --release --quiet --bin hygrocast --example ingest_bench
    TARGET=target/release
else
    cargo build --quiet --bin hygrocast --example ingest_bench
    TARGET=target/debug
fi
BIN="$PWD/$TARGET/hygrocast"
BENCH="$PWD/$TARGET/examples/ingest_bench"
LUA="$PWD/benches/single_reading.lua"

WORK=$(mktemp -d /tmp/hgc-bench.XXXXXX)
# As root the private cluster runs as an unprivileged user, who must reach the directory.
chmod 755 "$WORK"
SERVE_PID="" BARE_PID=""
cleanup() {
    [ -n "$BARE_PID" ] && kill "$BARE_PID" 2>/dev/null && wait "$BARE_PID" 2>/dev/null
    if [ -n "$SERVE_PID" ]; then
        kill -INT "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# GET path on port; prints the status line's code (no curl needed).
http_status() {
    local code
    code=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3 && head -1 <&3) 2>/dev/null | awk '{print $2}')
    echo "${code:-000}"
}

wait_for() { # port path want pid
    for _ in $(seq 1 600); do
        [ "$(http_status "$1" "$2")" = "$3" ] && return 0
        kill -0 "$4" 2>/dev/null || { echo "process $4 died" >&2; return 1; }
        sleep 0.1
    done
    echo "timed out waiting for :$1$2" >&2
    return 1
}

PORT=$(free_port)
echo "== starting hygrocast serve ($PROFILE build) on 127.0.0.1:$PORT, private PostgreSQL in $WORK/data"
(
    cd "$WORK"
    export HYGROCAST_DATABASE__DATA_DIR="$WORK/data"
    export HYGROCAST_SERVER__BIND="127.0.0.1:$PORT"
    export HYGROCAST_LOG__LEVEL="${BENCH_LOG_LEVEL:-warn}"
    exec "$BIN" serve 2>"$WORK/serve.log"
) &
SERVE_PID=$!
wait_for "$PORT" /readyz 200 "$SERVE_PID" || { cat "$WORK/serve.log" >&2; exit 1; }
DB="host=$WORK/data/socket port=5432 user=hygrocast dbname=hygrocast"
URL="http://127.0.0.1:$PORT"

"$BENCH" setup --db "$DB" --sensors "$SENSORS" --tokens "$WORK/tokens.txt"

declare -A R
collect() { # runs a command, echoes its output, stores RESULT lines in R
    local out
    out=$("$@")
    echo "$out" | grep -v '^RESULT ' || true
    while read -r _ key value; do R[$key]=$value; done < <(echo "$out" | grep '^RESULT ')
}

load() { echo "    (load average: $(cut -d' ' -f1-3 /proc/loadavg))"; }
echo "== 1. JSON batches"
load
collect "$BENCH" batch --url "$URL" --db "$DB" --tokens "$WORK/tokens.txt" --format json \
    --readings "$READINGS" --batch "$BATCH" --clients "$CLIENTS"
echo "== 2. line protocol batches"
load
collect "$BENCH" batch --url "$URL" --db "$DB" --tokens "$WORK/tokens.txt" --format line \
    --readings "$READINGS" --batch "$BATCH" --clients "$CLIENTS"

to_ms() {
    awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; printf "%.2f", v}'
}
# CPU seconds (user + system) used so far by the given processes.
cpu_secs() {
    local total=0 t p
    for p in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }'
}
pg_pids() { # the private cluster's postmaster and its backends
    local pm
    pm=$(head -1 "$WORK/data/pg/postmaster.pid")
    echo "$pm" $(pgrep -P "$pm")
}
# wrk against $1 (base URL); results under prefix $2; $3: a command printing the pids
# whose CPU to charge (run before and after: PostgreSQL may start backends meanwhile).
# The machine's other load skews requests/s; CPU per request does not depend on it, so
# it is reported too, for the server side and for wrk itself.
run_wrk() {
    local out="$WORK/wrk-$2.txt" base="$1" key="$2" pids="$3"
    local before after
    # shellcheck disable=SC2046
    before=$(cpu_secs $($pids))
    local TIMEFORMAT="%U %S"
    { time wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" \
        "$base/api/v1/readings" -- "$WORK/tokens.txt" "$THREADS" "$(date +%s)" >"$out" ; } 2>"$out.time" ||
        { echo "FAIL: wrk against $base:" >&2; cat "$out" "$out.time" >&2; exit 1; }
    # shellcheck disable=SC2046
    after=$(cpu_secs $($pids))
    sed 's/^/    /' "$out"
    R[${key}_rps]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    R[${key}_requests]=$(awk '/requests in/ {print $1}' "$out")
    R[${key}_non2xx]=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
    R[${key}_non2xx]=${R[${key}_non2xx]:-0}
    R[${key}_p50]=$(awk '$1=="50%" {print $2}' "$out" | to_ms)
    R[${key}_p99]=$(awk '$1=="99%" {print $2}' "$out" | to_ms)
    R[${key}_cpu_us]=$(awk -v a="$after" -v b="$before" -v n="${R[${key}_requests]}" 'BEGIN { printf "%.1f", (a - b) * 1e6 / n }')
    R[${key}_wrk_us]=$(awk -v n="${R[${key}_requests]}" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$out.time")
}

echo "== 3. single readings: wrk, $CONNECTIONS connections, ${DURATION} s"
"$BENCH" truncate --db "$DB"
load
serve_pids() { echo "$SERVE_PID" $(pg_pids); }
# shellcheck disable=SC2046
PG_BEFORE=$(cpu_secs $(pg_pids))
run_wrk "$URL" single serve_pids
# shellcheck disable=SC2046
R[single_pg_us]=$(awk -v a="$(cpu_secs $(pg_pids))" -v b="$PG_BEFORE" -v n="${R[single_requests]}" 'BEGIN { printf "%.1f", (a - b) * 1e6 / n }')
# Every 2xx must be a committed row. (Rows can exceed 2xx: requests cut off when wrk
# stops may commit without wrk counting their answer.)
collect "$BENCH" count --db "$DB"
ACKED=$(( ${R[single_requests]} - ${R[single_non2xx]} ))
if [ "${R[rows]}" -lt "$ACKED" ]; then
    echo "FAIL: $ACKED requests acknowledged but only ${R[rows]} rows stored" >&2
    exit 1
fi
echo "    acknowledged $ACKED, rows stored ${R[rows]}: every 2xx is committed"

echo "== 4. ceiling: one binary COPY of the same rows as 1."
load
collect "$BENCH" copy --db "$DB" --tokens "$WORK/tokens.txt" --readings "$READINGS" --batch "$BATCH"

echo "== 5. ceiling: bare actix endpoint (same parsing, no database), same wrk load"
# The port can be taken between free_port and the bind: then try another, and if the
# endpoint never comes up, say why instead of letting wrk fail on a closed port.
start_bare() {
    local attempt
    for attempt in 1 2 3; do
        BARE_PORT=$(free_port)
        "$BENCH" bare --bind "127.0.0.1:$BARE_PORT" 2>"$WORK/bare.log" &
        BARE_PID=$!
        for _ in $(seq 1 300); do
            (exec 3<>"/dev/tcp/127.0.0.1/$BARE_PORT") 2>/dev/null && return 0
            kill -0 "$BARE_PID" 2>/dev/null || break
            sleep 0.1
        done
        echo "bare endpoint not up on :$BARE_PORT (attempt $attempt):" >&2
        cat "$WORK/bare.log" >&2
        kill "$BARE_PID" 2>/dev/null || true
        wait "$BARE_PID" 2>/dev/null || true
        BARE_PID=""
    done
    return 1
}
start_bare || { echo "FAIL: the bare endpoint did not start" >&2; exit 1; }
load
bare_pids() { echo "$BARE_PID"; }
run_wrk "http://127.0.0.1:$BARE_PORT" bare bare_pids
kill "$BARE_PID" && wait "$BARE_PID" 2>/dev/null || true
BARE_PID=""

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
R1=$(ratio "${R[json_rps]}" "${R[copy_rps]}")
R2=$(ratio "${R[line_rps]}" "${R[copy_rps]}")
R3=$(ratio "${R[single_rps]}" "${R[bare_rps]}")
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t ? "meets" : "BELOW") }'; }
# Requests/s if the ${THREADS}-core machine ran nothing but this test: cores / CPU per request.
idle_rps() { awk -v s="$1" -v w="$2" -v c="$(nproc)" 'BEGIN { printf "%.0f", c * 1e6 / (s + w) }'; }
IDLE_SINGLE=$(idle_rps "${R[single_cpu_us]}" "${R[single_wrk_us]}")
IDLE_BARE=$(idle_rps "${R[bare_cpu_us]}" "${R[bare_wrk_us]}")
R3_CPU=$(ratio "$IDLE_SINGLE" "$IDLE_BARE")
P99_OK=$(awk -v p="${R[single_p99]}" 'BEGIN { print (p < 25 ? "meets" : "ABOVE") }')

cat <<EOF

== hygrocast ingestion benchmark ($MODE, $PROFILE build, $(nproc) cores shared by server, PostgreSQL and load; load average now $(cut -d' ' -f1-3 /proc/loadavg))
 1. JSON batches ($BATCH x $CLIENTS clients)   ${R[json_rps]} readings/s
 2. line protocol batches           ${R[line_rps]} readings/s
 3. single readings (wrk -c$CONNECTIONS)       ${R[single_rps]} requests/s, p50 ${R[single_p50]} ms, p99 ${R[single_p99]} ms, non-2xx ${R[single_non2xx]}
 4. binary COPY ceiling             ${R[copy_rps]} rows/s
 5. bare actix endpoint ceiling     ${R[bare_rps]} requests/s, p50 ${R[bare_p50]} ms, p99 ${R[bare_p99]} ms
 ratio 1/4 = $R1   (target >= 0.6: $(verdict "$R1" 0.6))
 ratio 2/4 = $R2   (target >= 0.6: $(verdict "$R2" 0.6))
 ratio 3/5 = $R3   (target >= 0.6: $(verdict "$R3" 0.6)); p99 ${R[single_p99]} ms (target < 25 ms: $P99_OK)
 CPU per request (independent of the machine's other load):
    3. hygrocast + its PostgreSQL ${R[single_cpu_us]} us (PostgreSQL ${R[single_pg_us]}), wrk ${R[single_wrk_us]} us  -> ~$IDLE_SINGLE requests/s on $(nproc) idle cores
    5. bare endpoint              ${R[bare_cpu_us]} us, wrk ${R[bare_wrk_us]} us  -> ~$IDLE_BARE requests/s on $(nproc) idle cores
    ratio 3/5 by CPU cost = $R3_CPU (target >= 0.6: $(verdict "$R3_CPU" 0.6))
EOF
if [ "$MODE" = quick ]; then
    echo " (quick mode on a $PROFILE build: this checks the benchmark runs; its figures mean little)"
fi
