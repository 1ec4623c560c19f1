#!/usr/bin/env bash
# The workload proxy and upstream routes against nginx, in one run, same upstream, same
# wrk settings: wrk (core LOAD_CPU) → target (core SERVER_CPU) → upstream (also core
# SERVER_CPU: an nginx answering "ok" from memory). Targets:
#   direct   wrk → upstream
#   nginx    wrk → nginx proxy_pass with a static Authorization header (keep-alive upstream):
#            an access token exchanged for the proxy's run credential, so the upstream
#            gets the same header from both
#   proxy    wrk → keyward proxy (injects its access token; keep-alive upstream)
#   route    wrk → keyward serve --route (authenticates an API key, adds identity headers)
# Prints requests/s, p50 and p99 latency per target (medians of ROUNDS alternating
# rounds), and the ratios of keyward's proxy and route to nginx.
#
#   bash bench/proxy.sh          # DURATION=10 ROUNDS=3 CONNECTIONS=16 by default
#
# Installs nginx, wrk, jq, bc from the distribution's packages if missing. Every timed
# response must be a 200 containing "ok".
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

need_tools nginx
machine_note
build_keyward

UPSTREAM_PORT=${UPSTREAM_PORT:-19001}
NGINX_PORT=${NGINX_PORT:-19002}

start_ok_upstream "$UPSTREAM_PORT"

# keyward with a route to the same upstream, an hour's tokens, a user with an API key
# and a running workload whose credential the proxy uses.
dir="$TMP/keyward"
mkdir -p "$dir"
taskset -c "$SERVER_CPU" "$KEYWARD" serve --data-dir "$dir/data" --listen 127.0.0.1:0 \
    --route "/bench=$UPSTREAM" >"$dir/stdout.log" 2>"$dir/stderr.log" &
KW_PID=$!
PIDS+=("$KW_PID")
wait_for_line "$dir/stdout.log" 'keyward listening on http://'
KW_URL=$(grep -Eo 'keyward listening on http://[0-9.:]+' "$dir/stdout.log" | head -n1 | sed 's/keyward listening on //')
wait_for_line "$dir/stderr.log" '^kwa_'
KW_ADMIN=$(grep -E '^kwa_' "$dir/stderr.log" | head -n1)
call 200 -X PATCH "$KW_URL/api/v1/realms/default" -H "X-Api-Key: $KW_ADMIN" \
    -H 'Content-Type: application/json' -d '{"accessTokenLifetimeSeconds":3600}' >/dev/null
user_id=$(call 201 -X POST "$KW_URL/api/v1/users" -H "X-Api-Key: $KW_ADMIN" -H 'Content-Type: application/json' \
    -d '{"username":"ada","email":"ada@example.com"}' | jq -r .id)
API_KEY=$(call 201 -X POST "$KW_URL/api/v1/users/$user_id/api-keys" -H "X-Api-Key: $KW_ADMIN" \
    -H 'Content-Type: application/json' -d '{"name":"bench"}' | jq -r .secret)
call 201 -X POST "$KW_URL/api/v1/workloads" -H "X-Api-Key: $KW_ADMIN" -H 'Content-Type: application/json' \
    -d "{\"userId\":\"$user_id\",\"kind\":\"job\",\"runId\":\"bench\"}" | jq -j .credential >"$TMP/run-credential"

# nginx's static header is an access token exchanged for the same run credential, as
# the proxy's is: the upstream reads the same ~600-byte header behind either. (With a
# short `Bearer static-token`, the upstream, which shares the targets' core, did less
# work per call behind nginx: 1.3 µs of user CPU against 2.2 µs.)
STATIC_TOKEN=$(exchange_run_credential "$KW_URL" "$TMP/run-credential")
start_nginx proxy "$(nginx_proxy_block "$NGINX_PORT" "$UPSTREAM_PORT" "$STATIC_TOKEN")"
NGINX_PID=$WORKER
call 200 "http://127.0.0.1:$NGINX_PORT/" >/dev/null

taskset -c "$SERVER_CPU" "$KEYWARD" proxy --server "$KW_URL" --credential-file "$TMP/run-credential" \
    --listen 127.0.0.1:0 --upstream "$UPSTREAM" --log warn >"$TMP/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_for_line "$TMP/proxy.log" 'keyward proxy listening on http://'
PROXY_URL=$(grep -Eo 'keyward proxy listening on http://[0-9.:]+' "$TMP/proxy.log" | sed 's/keyward proxy listening on //')
call 200 "$PROXY_URL/" >/dev/null
call 200 -H "X-Api-Key: $API_KEY" "$KW_URL/bench/" >/dev/null
call 401 "$KW_URL/bench/" >/dev/null

unset WRK_BODY
export WRK_EXPECT=ok
measure() { # target seconds → "rps busy p50 p99"
    local url pid extra=()
    case $1 in
        direct) url="$UPSTREAM/"; pid=$UPSTREAM_PID ;;
        nginx) url="http://127.0.0.1:$NGINX_PORT/"; pid=$NGINX_PID ;;
        proxy) url="$PROXY_URL/"; pid=$PROXY_PID ;;
        route) url="$KW_URL/bench/"; pid=$KW_PID; extra=(-H "X-Api-Key: $API_KEY") ;;
    esac
    SERVER_PID=$pid
    local result
    result=$(run_wrk "$2" "$url" "${extra[@]}")
    local last
    last=$(ls -t "$TMP"/wrk.*.txt | head -n1)
    echo "$result $(latency "$last" 50) $(latency "$last" 99)"
}

TARGETS=(direct nginx proxy route)
measure_rounds "${TARGETS[@]}"
# shellcheck disable=SC2086
{
    nginx_rps=$(median ${RPS[nginx]}); proxy_rps=$(median ${RPS[proxy]}); route_rps=$(median ${RPS[route]})
    direct_p50=$(median ${P50[direct]}); nginx_p50=$(median ${P50[nginx]}); proxy_p50=$(median ${P50[proxy]})
}
echo
echo "keyward proxy / nginx throughput: $(ratio "$proxy_rps" "$nginx_rps")   (goal >= 1.0)"
echo "keyward route / nginx throughput: $(ratio "$route_rps" "$nginx_rps")"
echo "added p50 latency over direct: nginx $(echo "$nginx_p50 - $direct_p50" | bc) us, keyward proxy $(echo "$proxy_p50 - $direct_p50" | bc) us   (goal: proxy <= nginx)"
