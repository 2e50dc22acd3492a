#!/usr/bin/env bash
# Soak: hygrocast living a compressed version of its normal life for SOAK_MINUTES, with
# memory sampled as it goes. Prints figures; asserts nothing about them. It fails only on
# what must never happen however long it runs: a failed training run, a 5xx, a panic, or a
# reading acknowledged but not stored.
#
#   benches/soak.sh            release build, 30 min, 4 sensors, retraining every 2 min
#   benches/soak.sh --quick    dev build, 3 min, 2 sensors, retraining every minute (CI)
#   SOAK_MINUTES=240 SENSORS=8 benches/soak.sh   a longer or wider run
#
# The life: `hygrocast serve` on its private PostgreSQL in a temporary directory; SENSORS
# simulated sensors, backfilled with DAYS of history every 5 minutes, then posting live
# every 2 s, in turn as JSON, SenML and line protocol; a reader fetching the dashboard, a
# sensor page, the forecast and the models of a sensor in a loop; the retrain job on a
# fast cron (every sensor is retrained at each firing), the monitor job scoring live
# forecasts every minute and the prune job every few minutes, on a 5-minute grid so that
# every few minutes there is something new to retrain on.
#
# Every SAMPLE_SECS it prints: the server's resident memory (VmRSS) and the part of it the
# program has allocated (glibc's count, from /metrics: resident memory creeping while this
# stays flat is fragmentation, not a leak), PostgreSQL's
# proportional share (Pss, summed over its processes, so shared buffers count once), the
# data directory on disk, readings stored, training runs by outcome, queued runs and 5xx
# answers so far (from /metrics, the server's own count).
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=release SOAK_MINUTES=${SOAK_MINUTES:-30} SENSORS=${SENSORS:-4} DAYS=${DAYS:-30}
RETRAIN_CRON=${RETRAIN_CRON:-"0 */2 * * * *"} SAMPLE_SECS=${SAMPLE_SECS:-60}
# A 5-minute grid instead of the hourly default: the retrain job retrains a sensor only
# once it has a new step of data, so on the hourly grid a soak of minutes would train each
# sensor once. The backtest window is shorter than the default 60 days for the same reason.
STEP_SECS=300 WINDOW_DAYS=10
if [ "${1:-}" = --quick ]; then
    PROFILE=dev SOAK_MINUTES=3 SENSORS=2 DAYS=16 RETRAIN_CRON="0 * * * * *" SAMPLE_SECS=30
    WINDOW_DAYS=5
fi

. .ci/lib.sh
BIN=$(HGC_PROFILE=$PROFILE hgc_binary)

WORK=$(mktemp -d /tmp/hgc-soak.XXXXXX)
chmod 755 "$WORK"
PORT=$(hgc_free_port)
URL="http://127.0.0.1:$PORT"
SERVE_PID="" HELPERS=()
cleanup() {
    for p in "${HELPERS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$SERVE_PID" ]; then kill -INT "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# Killed or interrupted, still clean up: bash runs the EXIT trap only when it exits itself.
trap 'exit 143' TERM
trap 'exit 130' INT

export HYGROCAST_SERVER__BIND="127.0.0.1:$PORT"
export HYGROCAST_DATABASE__DATA_DIR="$WORK/data"
export HYGROCAST_SCHEDULER__RETRAIN_CRON="$RETRAIN_CRON"
export HYGROCAST_SCHEDULER__MONITOR_CRON="30 * * * * *"
export HYGROCAST_SCHEDULER__PRUNE_CRON="45 */2 * * * *"
# Few enough kept that the prune job deletes models while runs promote beside it.
export HYGROCAST_RETENTION__MODELS_KEPT=${MODELS_KEPT:-3}
export HYGROCAST_FORECAST__STEP_SECS=$STEP_SECS HYGROCAST_FORECAST__WINDOW_DAYS=$WINDOW_DAYS
export HYGROCAST_LOG__LEVEL=info
cd "$WORK"
"$BIN" serve >serve.log 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 300); do
    curl -fs "$URL/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fs "$URL/readyz" >/dev/null || { echo "soak: the server did not become ready" >&2; tail -20 serve.log >&2; exit 1; }

formats=(json senml line)
for i in $(seq 1 "$SENSORS"); do
    token=$("$BIN" sensor add --name "soak-$i" --quiet)
    format=${formats[$(((i - 1) % 3))]}
    "$BIN" simulate --url "$URL" --token "$token" --backfill "${DAYS}d" --interval "${STEP_SECS}s" \
        --backfill-only --seed "$i" --format "$format" >/dev/null 2>&1
    "$BIN" simulate --url "$URL" --token "$token" --backfill 0 --interval 2s --seed "$i" \
        --format "$format" >"sim-$i.log" 2>&1 &
    HELPERS+=($!)
done
(
    while :; do
        s=$((RANDOM % SENSORS + 1))
        for path in / "/sensors/soak-$s" "/api/v1/sensors/soak-$s/forecast?horizon=120h" \
            "/api/v1/sensors/soak-$s/models"; do
            curl -s -o /dev/null "$URL$path" || true
        done
        sleep 0.5
    done
) &
HELPERS+=($!)

# kib_of FIELD PID...: the sum of a /proc field over processes (VmRSS from status, Pss
# from smaps_rollup), in KiB.
kib_of() {
    local field=$1 file=$2 total=0 pid v
    shift 2
    for pid in "$@"; do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/$file" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
postgres_pids() {
    local pm
    pm=$(head -1 "$(find "$WORK/data" -name postmaster.pid | head -1)" 2>/dev/null) || return 0
    echo "$pm"
    # Its children, from /proc (procps's pgrep is not on every minimal Debian).
    local stat
    for stat in /proc/[0-9]*/stat; do
        [ "$(awk '{ print $4 }' "$stat" 2>/dev/null)" = "$pm" ] && basename "$(dirname "$stat")"
    done
    return 0
}
# metric NAME_REGEX: the sum of the samples whose name and labels match, from /metrics.
metric() {
    curl -fs "$URL/metrics" | awk -v re="$1" '$0 !~ /^#/ && $1 ~ re { s += $2 } END { printf "%d", s }'
}
STORED='^hygrocast_readings_accepted_total'
SUCCEEDED='^hygrocast_training_runs_total\{status="succeeded"\}'
FAILED='^hygrocast_training_runs_total\{status="failed"\}'
SERVER_ERRORS='^hygrocast_http_requests_total\{.*status="5'

echo "soak: $SENSORS sensors with ${DAYS} days of history, retrain cron '$RETRAIN_CRON', $SOAK_MINUTES min, $PROFILE build"
printf '%8s %12s %10s %12s %10s %9s %7s %7s %7s %5s\n' \
    "min" "server MiB" "heap MiB" "postgres MiB" "disk MiB" "readings" "runs ok" "failed" "queued" "5xx"
trained_rss=() trained_heap=()
end=$((SECONDS + SOAK_MINUTES * 60))
while :; do
    rss=$(kib_of VmRSS status "$SERVE_PID")
    pss=$(kib_of Pss smaps_rollup $(postgres_pids))
    ok=$(metric "$SUCCEEDED")
    # Memory once every sensor has been trained: before that, the models and caches a
    # serving process always holds are not all loaded yet.
    heap=$(metric '^hygrocast_heap_allocated_bytes$')
    if [ "$ok" -ge "$SENSORS" ]; then trained_rss+=("$rss") trained_heap+=("$((heap / 1024))"); fi
    printf '%8.1f %12.1f %10.1f %12.1f %10.1f %9d %7d %7d %7d %5d\n' \
        "$(echo "$SECONDS $end $SOAK_MINUTES" | awk '{ print $3 - ($2 - $1) / 60 }')" \
        "$(echo "$rss" | awk '{ print $1 / 1024 }')" "$(echo "$heap" | awk '{ print $1 / 1048576 }')" \
        "$(echo "$pss" | awk '{ print $1 / 1024 }')" \
        "$(du -sk "$WORK/data" | awk '{ print $1 / 1024 }')" \
        "$(metric "$STORED")" "$ok" "$(metric "$FAILED")" \
        "$(metric '^hygrocast_training_runs_queued')" "$(metric "$SERVER_ERRORS")"
    [ "$SECONDS" -ge "$end" ] && break
    sleep "$SAMPLE_SECS"
done

# Stop the senders and readers, let the last group commit land, then check the books.
for p in "${HELPERS[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${HELPERS[@]}" 2>/dev/null || true
HELPERS=()
sleep 1
accepted=$(metric "$STORED")
stored=0
for i in $(seq 1 "$SENSORS"); do
    n=$(curl -fs "$URL/api/v1/sensors/soak-$i/readings?from=0&limit=100000" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["readings"]))')
    stored=$((stored + n))
done
ok=$(metric "$SUCCEEDED") failed=$(metric "$FAILED") errors=$(metric "$SERVER_ERRORS")
monitor=$(metric '^hygrocast_scheduler_job_last_success_timestamp_seconds\{job="monitor"\}')
prune=$(metric '^hygrocast_scheduler_job_last_success_timestamp_seconds\{job="prune"\}')
# A fit's working memory comes and goes (the trainer hands it back to the OS after each
# fit): a leak shows as a later half that sits higher than the earlier one, not as one
# high sample, and the least sample of a half is the server between fits.
# halves WHAT KIB...: the median of the first and second half of the samples, the most and
# the least of each half.
halves() {
    local what=$1
    shift
    echo "$@" | awk -v what="$what" '
# The median of fields lo..hi (insertion sort: mawk has no asort).
function median(lo, hi,    k, i, j, v, x) {
    k = 0
    for (i = lo; i <= hi; i++) {
        v = $i
        for (j = k; j > 0 && x[j] > v; j--) x[j + 1] = x[j]
        x[j + 1] = v; k++
    }
    return k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
}
function least(lo, hi,    i, v) {
    v = $lo
    for (i = lo + 1; i <= hi; i++) if ($i < v) v = $i
    return v
}
{
    h = int(NF / 2)
    if (h < 1) { print what ": too few samples after every sensor was trained"; exit }
    for (i = 1; i <= NF; i++) if ($i > m) m = $i
    a = median(1, h); b = median(h + 1, NF)
    printf "%s once every sensor was trained: median %.1f MiB in the first half of the samples, %.1f MiB in the second (%+.1f MiB), %.1f MiB at most\n",
        what, a / 1024, b / 1024, (b - a) / 1024, m / 1024
    # The least sample of each half is the memory between fits, when one fell in it.
    printf "%s between fits (least sample of each half): %.1f MiB, then %.1f MiB\n",
        what, least(1, h) / 1024, least(h + 1, NF) / 1024
}'
}
halves "server memory" "${trained_rss[@]}"
halves "heap allocated" "${trained_heap[@]}"
echo "readings: $accepted acknowledged, $stored stored; training runs: $ok succeeded, $failed failed; 5xx: $errors"
# Versions, and how many of them retention left without their fitted model.
versions=0 pruned=0
for i in $(seq 1 "$SENSORS"); do
    read -r n p < <(curl -fs "$URL/api/v1/sensors/soak-$i/models" | python3 -c '
import json, sys
v = json.load(sys.stdin)["versions"]
print(len(v), sum(x["model_pruned_at"] is not None for x in v))')
    versions=$((versions + n)) pruned=$((pruned + p))
done
echo "model versions: $versions, of which $pruned had their fitted model deleted by retention (models_kept $HYGROCAST_RETENTION__MODELS_KEPT)"

status=0
[ "$accepted" -eq "$stored" ] || { echo "soak: FAIL: $accepted readings acknowledged but $stored stored" >&2; status=1; }
[ "$ok" -gt 0 ] || { echo "soak: FAIL: no training run succeeded: the retrain schedule never ran" >&2; status=1; }
[ "$failed" -eq 0 ] || { echo "soak: FAIL: $failed training runs failed" >&2; grep -i 'training run failed' serve.log | tail -5 >&2; status=1; }
[ "$errors" -eq 0 ] || { echo "soak: FAIL: $errors requests answered 5xx" >&2; status=1; }
[ "$monitor" -gt 0 ] || { echo "soak: FAIL: the monitor job never succeeded" >&2; status=1; }
[ "$prune" -gt 0 ] || { echo "soak: FAIL: the prune job never succeeded" >&2; status=1; }
if grep -q panicked serve.log; then echo "soak: FAIL: the server panicked" >&2; grep -A5 panicked serve.log >&2; status=1; fi
[ "$status" -eq 0 ] && echo "soak: OK"
exit "$status"
