# Shared by the bench/ scripts: build and start keyward, set up credentials over its API,
# run wrk pinned to a core, and check that what was timed were 200s.
#
# Source it from a script run with bash; it sets `set -euo pipefail`. Knobs (environment):
#   DURATION    seconds each wrk measurement lasts            (default 10)
#   WARMUP      seconds of load before the first measurement  (default 5)
#   CONNECTIONS wrk connections                               (default 16)
#   ROUNDS      measurements per target, alternating targets  (default 3)
#   SERVER_CPU  the core the server under test is pinned to   (default 0)
#   LOAD_CPU    the core wrk is pinned to                     (default 1)
#   STEAL_LIMIT the most of either core the hypervisor may take from this machine
#               during a measurement before it is repeated    (default 0.02)
#   STEAL_RETRIES  how often such a measurement is repeated   (default 3)
#   KEEP        set to 1 to keep the temporary directory

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-5}
CONNECTIONS=${CONNECTIONS:-16}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
STEAL_LIMIT=${STEAL_LIMIT:-0.02}
STEAL_RETRIES=${STEAL_RETRIES:-3}
KEYWARD="$ROOT/target/release/keyward"

TMP=$(mktemp -d /tmp/keyward-bench.XXXXXX)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installs what the scripts need and is missing (Debian/Ubuntu packages), and the
# commands given as arguments (each from the package of the same name).
need_tools() {
    local missing=() extra
    for extra in "$@"; do command -v "$extra" >/dev/null || missing+=("$extra"); done
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    command -v jq >/dev/null || missing+=(jq)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v bc >/dev/null || missing+=(bc)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
            { $sudo apt-get update >/dev/null && $sudo apt-get install -y "${missing[@]}" >/dev/null; }
    fi
    [ "$(nproc)" -ge 2 ] || die "needs 2 cores: one for the server, one for wrk"
}

build_keyward() {
    log "building target/release/keyward"
    (cd "$ROOT" && cargo build --release -q -p keyward)
}

# Waits up to $3 seconds for file $1 to contain a line matching regex $2.
wait_for_line() {
    local file=$1 pattern=$2 limit=${3:-60} waited=0
    until grep -Eq "$pattern" "$file" 2>/dev/null; do
        sleep 0.1
        waited=$((waited + 1))
        [ "$waited" -lt $((limit * 10)) ] || die "timed out waiting for /$pattern/ in $file"
    done
}

# Starts keyward on a fresh SQLite data dir, pinned to SERVER_CPU. Sets KW_URL, KW_PID
# and KW_ADMIN (the bootstrap admin key, which keyward prints on stderr once).
start_keyward() {
    local dir="$TMP/keyward"
    mkdir -p "$dir"
    taskset -c "$SERVER_CPU" "$KEYWARD" serve --data-dir "$dir/data" --listen 127.0.0.1:0 \
        >"$dir/stdout.log" 2>"$dir/stderr.log" &
    KW_PID=$!
    PIDS+=("$KW_PID")
    wait_for_line "$dir/stdout.log" 'keyward listening on http://'
    KW_URL=$(grep -Eo 'keyward listening on http://[0-9.:]+' "$dir/stdout.log" | head -n1 | sed 's/keyward listening on //')
    wait_for_line "$dir/stderr.log" '^kwa_'
    KW_ADMIN=$(grep -E '^kwa_' "$dir/stderr.log" | head -n1)
    log "keyward $KW_URL (pid $KW_PID, core $SERVER_CPU)"
}

# curl that fails on any status but the expected one ($1), printing the body.
call() {
    local expected=$1
    shift
    local out status
    out=$(curl -sS -w '\n%{http_code}' "$@")
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$status" != "$expected" ]; then
        # The URL only: the other arguments carry credentials.
        local arg url=""
        for arg in "$@"; do [[ $arg == http* ]] && url=$arg; done
        die "expected $expected, got $status from $url: $out"
    fi
    printf '%s' "$out"
}

# A service account and a kws_ token for it, through the API. Sets SA_NAME, SA_TOKEN.
create_service_account() {
    SA_NAME=${1:-bench-etl}
    local account idp
    account=$(call 200 -X POST "$KW_URL/v4/serviceAccounts" -H "X-Api-Key: $KW_ADMIN" \
        -H 'Content-Type: application/json' -d "{\"username\":\"$SA_NAME\",\"email\":\"$SA_NAME@example.com\"}")
    idp=$(jq -r .idpId <<<"$account")
    SA_TOKEN=$(call 200 -X POST "$KW_URL/v4/serviceAccounts/$idp/tokens" -H "X-Api-Key: $KW_ADMIN" \
        -H 'Content-Type: application/json' -d '{"name":"bench"}' | jq -r .token)
    [[ $SA_TOKEN == kws_* ]] || die "no service-account token: $SA_TOKEN"
}

# Total CPU time (user + system, clock ticks) of process $1 and all its threads.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# "steal all" clock ticks of core $1 so far, from /proc/stat: steal is time the
# hypervisor ran another virtual machine while this one wanted the core.
core_ticks() {
    awk -v cpu="cpu$1" '$1 == cpu { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# The larger share of the server's and wrk's core that was stolen between two readings
# of `core_ticks SERVER_CPU; core_ticks LOAD_CPU` ($1 before, $2 after, four numbers each).
stolen_share() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        s = (y[1] - x[1]) / (y[2] - x[2] + 1e-9); l = (y[3] - x[3]) / (y[4] - x[4] + 1e-9)
        printf "%.3f", (s > l ? s : l)
    }'
}

# Runs wrk against $2 (URL) for $1 seconds, pinned to LOAD_CPU, with bench/check.lua
# and the extra wrk arguments after the URL (headers), while measuring the CPU time of
# process $SERVER_PID. WRK_BODY (a form body, makes it a POST) and WRK_EXPECT (text every
# 200 must contain) pass through to the script. Prints "requests_per_second
# cpu_busy_fraction" and fails if any response was not a 200 with the expected text, or
# any socket error occurred. Writes the share of a core stolen meanwhile (`stolen_share`)
# to $TMP/stolen.
run_wrk() {
    local seconds=$1 url=$2
    shift 2
    local args=(-t1 -c "$CONNECTIONS" -d "${seconds}s" --latency -s "$BENCH_DIR/check.lua")
    local out="$TMP/wrk.$RANDOM.txt" ticks_before ticks_after hz cores_before cores_after
    hz=$(getconf CLK_TCK)
    ticks_before=$(cpu_ticks "$SERVER_PID")
    cores_before="$(core_ticks "$SERVER_CPU") $(core_ticks "$LOAD_CPU")"
    taskset -c "$LOAD_CPU" wrk "${args[@]}" "$@" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
    ticks_after=$(cpu_ticks "$SERVER_PID")
    cores_after="$(core_ticks "$SERVER_CPU") $(core_ticks "$LOAD_CPU")"
    stolen_share "$cores_before" "$cores_after" >"$TMP/stolen"
    cat "$out" >>"$TMP/wrk-all.txt"
    if grep -q 'Non-2xx or 3xx responses' "$out" || ! grep -Eq '^check: ok=[0-9]+ not_200=0 missing_expected=0$' "$out"; then
        cat "$out" >&2
        die "some responses to $url were not the expected 200s: the figure would time refusals"
    fi
    if grep -q 'Socket errors' "$out"; then
        cat "$out" >&2
        die "socket errors against $url"
    fi
    local rps requests
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    requests=$(awk '/requests in/ { print $1 }' "$out")
    [ -n "$rps" ] && [ "${requests:-0}" -gt 0 ] || { cat "$out" >&2; die "no requests completed"; }
    local busy
    busy=$(echo "scale=3; ($ticks_after - $ticks_before) / $hz / $seconds" | bc)
    echo "$rps $busy"
}

# The median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Requests per second of server CPU time: $1 requests/s at $2 of a core busy. On a shared
# machine other work can take part of the server's core; this is what one core gives.
per_cpu_second() {
    printf '%.1f' "$(echo "scale=6; $1 / $2" | bc)"
}

ratio() {
    printf '%.3f' "$(echo "scale=6; $1 / $2" | bc)"
}

machine_note() {
    log "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    log "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    log "commit: $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- crates || echo ' (crates/ modified)')"
}

# Latency percentile $2 from wrk output $1, in microseconds.
latency() {
    awk -v p="$2%" '$1 == p { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); print v } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 } }' "$1"
}

# `measure TARGET SECONDS` (the script's own, which ends in run_wrk), measured again while
# the hypervisor took more than STEAL_LIMIT of the server's or wrk's core: such a figure
# says more about the other machines on the host than about the target (in one session,
# nginx and keyward each fell to about a quarter of their rate with 0.3 of a core stolen).
# Applied to every target alike. After STEAL_RETRIES repeats the least disturbed try is
# kept, and logged as such. Each repeat is counted in $TMP/repeats; $TMP/stolen ends up
# with the kept try's share.
measure_clean() {
    local out stolen try best_out="" best_stolen=""
    for try in $(seq 0 "$STEAL_RETRIES"); do
        out=$(measure "$1" "$2")
        stolen=$(cat "$TMP/stolen")
        if awk -v s="$stolen" -v l="$STEAL_LIMIT" 'BEGIN { exit !(s <= l) }'; then
            echo "$out"
            return
        fi
        if [ -z "$best_stolen" ] || awk -v s="$stolen" -v b="$best_stolen" 'BEGIN { exit !(s < b) }'; then
            best_out=$out best_stolen=$stolen
        fi
        [ "$try" -lt "$STEAL_RETRIES" ] || break
        echo "$1" >>"$TMP/repeats"
        log "  $1: $stolen of a core stolen by the hypervisor (limit $STEAL_LIMIT), measuring again"
    done
    log "  $1: still disturbed after $STEAL_RETRIES repeats; the least disturbed try ($best_stolen of a core stolen) is kept"
    echo "$best_stolen" >"$TMP/stolen"
    echo "$best_out"
}

# Warms up, then measures each target given as an argument ROUNDS times, alternating
# targets within a round, with the script's own `measure TARGET SECONDS` (which prints
# "rps busy p50 p99"). Fills the arrays RPS, P50 and P99 (target → the rounds' values)
# and prints the table of medians.
measure_rounds() {
    local target round rps busy p50 p99
    log "warm-up: ${WARMUP}s each"
    for target in "$@"; do measure "$target" "$WARMUP" >/dev/null; done
    declare -gA RPS P50 P99
    : >"$TMP/repeats"
    log "measuring: $ROUNDS rounds of ${DURATION}s each, wrk -t1 -c$CONNECTIONS on core $LOAD_CPU"
    for round in $(seq 1 "$ROUNDS"); do
        for target in "$@"; do
            read -r rps busy p50 p99 <<<"$(measure_clean "$target" "$DURATION")"
            log "round $round $target: $rps req/s (target process $busy of a core busy), p50 ${p50} us, p99 ${p99} us, $(cat "$TMP/stolen") of a core stolen"
            RPS[$target]="${RPS[$target]:-} $rps"
            P50[$target]="${P50[$target]:-} $p50"
            P99[$target]="${P99[$target]:-} $p99"
        done
    done
    echo
    echo "measurements repeated because the hypervisor took more than $STEAL_LIMIT of a core: $(wc -l <"$TMP/repeats")"
    echo "medians of $ROUNDS rounds, ${DURATION}s each, $CONNECTIONS connections:"
    printf '%-8s %12s %10s %10s\n' target 'req/s' 'p50 us' 'p99 us'
    for target in "$@"; do
        # shellcheck disable=SC2086
        printf '%-8s %12s %10s %10s\n' "$target" "$(median ${RPS[$target]})" "$(median ${P50[$target]})" "$(median ${P99[$target]})"
    done
}

# Writes $TMP/$1/nginx.conf: one worker, the http{} block in $2, and the main-context
# directives in $3 (optional).
nginx_config() {
    local name=$1 body=$2 main=${3:-} dir="$TMP/$1"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
$main
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
    keepalive_requests 1000000;
    $body
}
CONF
}

# Starts an nginx with one worker pinned to SERVER_CPU, serving the http{} block in $2,
# under $TMP/$1. Sets WORKER to the worker's pid.
start_nginx() {
    local name=$1 dir="$TMP/$1"
    nginx_config "$name" "$2"
    taskset -c "$SERVER_CPU" nginx -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/out.log" 2>&1 &
    local master=$! tries=0
    PIDS+=("$master")
    WORKER=""
    while [ -z "$WORKER" ]; do
        sleep 0.1
        WORKER=$(pgrep -P "$master" | head -n1 || true)
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || die "nginx $name did not start: $(cat "$dir/error.log")"
    done
}

# An access token for the run credential in file $2 (written without a newline: curl
# would send it), exchanged at keyward $1 (RFC 8693), as `keyward proxy` gets its own.
# The credential is read from its file, not passed on curl's command line. Call it as
# `TOKEN=$(exchange_run_credential …)` on a line of its own, so a failure stops the script.
exchange_run_credential() {
    local token
    token=$(call 200 "$1/auth/realms/default/protocol/openid-connect/token" \
        --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
        --data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:access_token \
        --data-urlencode "subject_token@$2" | jq -r .access_token)
    # Only base64url and dots: nothing that could end a quoted nginx directive.
    [[ $token =~ ^eyJ[A-Za-z0-9_.-]+$ ]] || die "no access token for the run credential"
    printf '%s' "$token"
}

# The http{} block of nginx forwarding 127.0.0.1:$1 to the upstream on port $2 (keep-alive
# pool of 64) with the static header `Authorization: Bearer $3`.
nginx_proxy_block() {
    printf '%s' "
    upstream backend { server 127.0.0.1:$2; keepalive 64; }
    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Authorization \"Bearer $3\";
        }
    }"
}

# The upstream the forwarding benchmarks share: an nginx answering "ok" from memory on
# 127.0.0.1:$1 (started with start_nginx). Sets UPSTREAM (its URL) and UPSTREAM_PID (its
# worker), once it answers.
start_ok_upstream() {
    start_nginx upstream "server { listen 127.0.0.1:$1; location / { return 200 'ok\n'; } }"
    UPSTREAM_PID=$WORKER
    UPSTREAM="http://127.0.0.1:$1"
    local tries=0
    until curl -fs -o /dev/null "$UPSTREAM/"; do
        sleep 0.1
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || die "the upstream nginx did not answer: $(cat "$TMP/upstream/error.log")"
    done
    call 200 "$UPSTREAM/" >/dev/null
}
