#!/usr/bin/env bash
# Instructions keyward executes per request, counted by valgrind's callgrind: GET /healthz
# (the no-op route) against GET /api/v1/auth/check with an API key and with a Bearer
# access token, on the same keyward, one request at a time over one keep-alive
# connection. Unlike requests per second on a shared 2-core machine (which moved by ±10 %
# between runs minutes apart), these counts repeat to within a fraction of a percent, so a
# change to the request path can be judged by itself. They count user-space instructions
# only: the kernel's share of a request (about half of it over loopback) and cache misses
# are not in them, so they are a guide to sections 4.3's ratio, not a substitute.
# callgrind also does not see SHA-NI (it runs the AVX code of SHA-256 instead), which
# makes the API key's HMAC look about 4,000 instructions dearer than it is on hardware
# with it.
#
# Then the same count for `keyward proxy` forwarding GET / to an nginx that answers "ok"
# from memory (section 5): the proxy under callgrind, nginx and keyward serve outside it;
# and, for comparison, nginx's proxy_pass doing the same (with the same token as a static
# header) and the floor hyper sets (two hyper connections forwarding, nothing else).
#
#   bash bench/instructions.sh                 # REQUESTS=2000 by default
#   FORWARD_AS=wrk bash bench/instructions.sh  # forwarded calls carry only Host, as wrk's
#                                              # do in bench/proxy.sh (curl's default sends
#                                              # User-Agent and Accept too)
#
# Installs valgrind, curl, jq and nginx from the distribution's packages if missing.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REQUESTS=${REQUESTS:-2000}
case ${FORWARD_AS:-curl} in
    curl) FORWARD_HEADERS=() ;;
    wrk) FORWARD_HEADERS=(-H 'User-Agent:' -H 'Accept:') ;;
    *) die "FORWARD_AS is curl or wrk" ;;
esac
need_tools valgrind nginx
machine_note
build_keyward
start_keyward

# The credentials of section 4.3: a user's API key and a service account's access token.
user_id=$(call 201 -X POST "$KW_URL/api/v1/users" -H "X-Api-Key: $KW_ADMIN" -H 'Content-Type: application/json' \
    -d '{"username":"ada","email":"ada@example.com"}' | jq -r .id)
API_KEY=$(call 201 -X POST "$KW_URL/api/v1/users/$user_id/api-keys" -H "X-Api-Key: $KW_ADMIN" \
    -H 'Content-Type: application/json' -d '{"name":"bench"}' | jq -r .secret)
call 200 -X PATCH "$KW_URL/api/v1/realms/default" -H "X-Api-Key: $KW_ADMIN" \
    -H 'Content-Type: application/json' -d '{"accessTokenLifetimeSeconds":3600}' >/dev/null
create_service_account bench-etl
ACCESS_TOKEN=$(call 200 -u "$SA_NAME:$SA_TOKEN" -d grant_type=client_credentials \
    "$KW_URL/auth/realms/default/protocol/openid-connect/token" | jq -r .access_token)
[[ $ACCESS_TOKEN == eyJ* ]] || die "no access token: $ACCESS_TOKEN"
call 201 -X POST "$KW_URL/api/v1/workloads" -H "X-Api-Key: $KW_ADMIN" -H 'Content-Type: application/json' \
    -d "{\"userId\":\"$user_id\",\"kind\":\"job\",\"runId\":\"bench\"}" | jq -j .credential >"$TMP/run-credential"
kill "$KW_PID" && wait "$KW_PID" 2>/dev/null || true

# The same data directory, now under callgrind; counting starts at zero per phase. The
# same address too: the token's issuer is the server's URL.
dir="$TMP/keyward"
valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.%p" \
    "$KEYWARD" serve --data-dir "$dir/data" --listen "${KW_URL#http://}" >"$dir/cg.stdout.log" 2>"$dir/cg.stderr.log" &
CG_PID=$!
PIDS+=("$CG_PID")
wait_for_line "$dir/cg.stdout.log" 'keyward listening on http://' 300
URL=$(grep -Eo 'keyward listening on http://[0-9.:]+' "$dir/cg.stdout.log" | head -n1 | sed 's/keyward listening on //')
KW_CG_URL=$URL

urls() { # path count → the URL count times, for one curl over one connection
    local i
    for ((i = 0; i < $2; i++)); do printf '%s%s ' "$URL" "$1"; done
}
declare -A COUNT
phase() { # name path [curl arguments]: URL and CG_PID say where and whom to count
    local name=$1 path=$2
    shift 2
    # shellcheck disable=SC2046 # one word per URL
    curl -s "$@" $(urls "$path" 200) >/dev/null # warm: the token's first verification, caches
    callgrind_control -z "$CG_PID" >/dev/null
    # shellcheck disable=SC2046
    curl -s "$@" $(urls "$path" "$REQUESTS") >/dev/null
    callgrind_control -d "$name" "$CG_PID" >/dev/null
    local file total
    file=$(grep -l "^desc: Trigger: dump $name\$" "$TMP"/callgrind.*.* | head -n1)
    [ -n "$file" ] || file=$(ls -t "$TMP"/callgrind.*.* | head -n1)
    total=$(grep -m1 -E '^(summary|totals):' "$file" | awk '{print $2}')
    COUNT[$name]=$((total / REQUESTS))
}
# Each must answer 200 before it is counted.
call 200 "$URL/healthz" >/dev/null
call 200 -H "X-Api-Key: $API_KEY" "$URL/api/v1/auth/check" >/dev/null
call 200 -H "Authorization: Bearer $ACCESS_TOKEN" "$URL/api/v1/auth/check" >/dev/null
phase healthz /healthz
phase api_key /api/v1/auth/check -H "X-Api-Key: $API_KEY"
phase bearer /api/v1/auth/check -H "Authorization: Bearer $ACCESS_TOKEN"

# The proxy: an nginx upstream answering from memory, and `keyward proxy` under callgrind
# exchanging the run credential with the (counted, but not now) server above.
start_ok_upstream "${UPSTREAM_PORT:-19011}"
# Starts the command after $1 (a phase name) under callgrind, waits for the "listening on
# http://…" line it prints, checks that it forwards GET / to the upstream, and counts the
# phase. Sets CG_PID and URL.
count_forwarder() {
    local name=$1 log="$TMP/$1.log"
    shift
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.%p" "$@" >"$log" 2>&1 &
    CG_PID=$!
    PIDS+=("$CG_PID")
    wait_for_line "$log" 'listening on http://' 300
    URL=$(grep -Eo 'listening on http://[0-9.:]+' "$log" | head -n1 | sed 's/listening on //')
    [ "$(call 200 "$URL/")" = ok ] || die "$name did not forward to the upstream"
    phase "$name" / "${FORWARD_HEADERS[@]}"
}
count_forwarder proxy "$KEYWARD" proxy --server "$URL" --credential-file "$TMP/run-credential" \
    --listen 127.0.0.1:0 --upstream "$UPSTREAM" --log warn

# What the proxy is measured against: nginx's proxy_pass with the same token as its static
# header (its one process under callgrind: no master), and the floor hyper sets, two hyper
# connections and nothing else (crates/proxy/examples/bare_hyper_proxy.rs).
NGINX_CG_PORT=${NGINX_CG_PORT:-19012}
# On a line of its own: `set -e` stops the script if the exchange fails, which it would
# not inside another command's argument.
STATIC_TOKEN=$(exchange_run_credential "$KW_CG_URL" "$TMP/run-credential")
nginx_config nginx-cg "$(nginx_proxy_block "$NGINX_CG_PORT" "${UPSTREAM##*:}" "$STATIC_TOKEN")" "master_process off;"
URL="http://127.0.0.1:$NGINX_CG_PORT"
# Whatever answered there now would be counted as nginx: nothing may.
! curl -s -o /dev/null "$URL/" || die "something already listens on port $NGINX_CG_PORT (set NGINX_CG_PORT)"
valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.%p" \
    nginx -c "$TMP/nginx-cg/nginx.conf" -e "$TMP/nginx-cg/error.log" >"$TMP/nginx-cg/out.log" 2>&1 &
CG_PID=$!
PIDS+=("$CG_PID")
tries=0
until curl -fs -o /dev/null "$URL/"; do
    sleep 0.2
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || die "nginx under callgrind did not answer: $(cat "$TMP/nginx-cg/error.log")"
done
[ "$(call 200 "$URL/")" = ok ] || die "nginx did not forward to the upstream"
phase nginx / "${FORWARD_HEADERS[@]}"

(cd "$ROOT" && cargo build --release -q -p keyward-proxy --example bare_hyper_proxy)
count_forwarder bare "$ROOT/target/release/examples/bare_hyper_proxy" 127.0.0.1:0 "${UPSTREAM#http://}"

echo
echo "instructions per request (callgrind, $REQUESTS requests each, one connection):"
printf '  %-36s %12s %18s %16s\n' "" "per request" "more than healthz" "healthz ÷ this"
for target in healthz api_key bearer; do
    case $target in
        healthz) label="GET /healthz (no-op, baseline)" ;;
        api_key) label="GET /api/v1/auth/check, API key" ;;
        bearer) label="GET /api/v1/auth/check, Bearer JWT" ;;
    esac
    printf '  %-36s %12d %18d %16s\n' "$label" "${COUNT[$target]}" $((COUNT[$target] - COUNT[healthz])) \
        "$(ratio "${COUNT[healthz]}" "${COUNT[$target]}")"
done
echo
echo "instructions per call forwarded to an nginx answering from memory (same token; requests as ${FORWARD_AS:-curl} sends them):"
printf '  %-44s %12s %14s\n' "" "per call" "÷ nginx"
printf '  %-44s %12d %14s\n' "keyward proxy" "${COUNT[proxy]}" "$(ratio "${COUNT[proxy]}" "${COUNT[nginx]}")"
printf '  %-44s %12d %14s\n' "nginx proxy_pass" "${COUNT[nginx]}" "1.000"
printf '  %-44s %12d %14s\n' "hyper alone (bare_hyper_proxy, the floor)" "${COUNT[bare]}" "$(ratio "${COUNT[bare]}" "${COUNT[nginx]}")"
