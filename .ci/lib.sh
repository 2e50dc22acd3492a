# Shared by the CI scripts that run the real binary: start hygrocast on a free loopback
# port with its embedded PostgreSQL in a temporary data directory, wait until it is
# ready, and stop it again. Source it; set HGC_BIN to use another binary.

hgc_log() { echo "$(basename "$0"): $*" >&2; }

# A free TCP port on 127.0.0.1 (bound and released; good enough for a single machine).
hgc_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Builds (if needed) and prints the path of the hygrocast binary: HGC_BIN if set, else
# the dev build, or the release build with HGC_PROFILE=release.
hgc_binary() {
    if [ -n "${HGC_BIN:-}" ]; then
        echo "$HGC_BIN"
        return
    fi
    if [ "${HGC_PROFILE:-dev}" = release ]; then
        cargo build --release --quiet --bin hygrocast >&2 || return
        echo "$PWD/target/release/hygrocast"
    else
        cargo build --quiet --bin hygrocast >&2 || return
        echo "$PWD/target/debug/hygrocast"
    fi
}

# hgc_start WORKDIR PORT [VAR=VALUE ...]: starts `hygrocast serve` in the background with
# its data under WORKDIR (which must be traversable by the embedded cluster's user when
# we are root), waits for /readyz, sets HGC_PID. Extra VAR=VALUE pairs go to its env.
hgc_start() {
    local dir=$1 port=$2
    shift 2
    local bin
    bin=$(hgc_binary)
    chmod 711 "$dir"
    env HYGROCAST_SERVER__BIND="127.0.0.1:$port" \
        HYGROCAST_DATABASE__DATA_DIR="$dir/data" \
        HYGROCAST_SCHEDULER__RETRAIN_ENABLED=false \
        HYGROCAST_SCHEDULER__MONITOR_ENABLED=false \
        HYGROCAST_SERVER__WORKERS=2 \
        "$@" \
        "$bin" --config "$PWD/config.toml" serve >"$dir/hygrocast.log" 2>&1 &
    HGC_PID=$!
    local i
    for i in $(seq 1 120); do
        if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            hgc_log "hygrocast ready on 127.0.0.1:$port (pid $HGC_PID)"
            return 0
        fi
        if ! kill -0 "$HGC_PID" 2>/dev/null; then
            hgc_log "hygrocast exited during start-up:"
            cat "$dir/hygrocast.log" >&2
            return 1
        fi
        sleep 0.5
    done
    hgc_log "hygrocast not ready after 60 s:"
    cat "$dir/hygrocast.log" >&2
    return 1
}

# Stops the hygrocast started by hgc_start (SIGTERM: graceful, stops its PostgreSQL).
hgc_stop() {
    if [ -n "${HGC_PID:-}" ] && kill -0 "$HGC_PID" 2>/dev/null; then
        kill -TERM "$HGC_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 60); do
            kill -0 "$HGC_PID" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$HGC_PID" 2>/dev/null; then
            hgc_log "hygrocast did not stop in 30 s; killing it"
            kill -KILL "$HGC_PID" 2>/dev/null || true
        fi
        wait "$HGC_PID" 2>/dev/null || true
    fi
    HGC_PID=
}

# A sensor with a token, through the CLI, if this binary has the `sensor add` command.
# Prints the token; fails (status 3) when the command does not exist yet.
hgc_sensor_add() {
    local dir=$1 name=$2
    local bin
    bin=$(hgc_binary)
    if ! "$bin" sensor --help >/dev/null 2>&1; then
        return 3
    fi
    HYGROCAST_DATABASE__DATA_DIR="$dir/data" "$bin" --config "$PWD/config.toml" \
        sensor add --name "$name" --quiet
}

# Whether the running app answers METHOD PATH with anything but 404/405 (the route exists).
hgc_route_exists() {
    local method=$1 url=$2 code
    code=$(curl -s -o /dev/null -w '%{http_code}' -X "$method" "$url")
    [ "$code" != 404 ] && [ "$code" != 405 ] && [ "$code" != 000 ]
}
