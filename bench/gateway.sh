#!/usr/bin/env bash
# The API gateway's cost of authentication, in one run on one keyward: wrk (core
# LOAD_CPU) → keyward serve (core SERVER_CPU) → upstream (also core SERVER_CPU: an nginx
# answering "ok" from memory). Three deployments of the same upstream:
#   public   auth {"type":"none"}: the gateway's forwarding alone (the baseline)
#   apikey   auth {"type":"apiKeys"}: a kwd_ key in Authorization: Bearer
#   jwt      auth {"type":"jwt","realm":"default",…} with a required claim: an access token
# Prints requests/s, p50 and p99 per target (medians of ROUNDS alternating rounds) and the
# ratios of apikey and jwt to public (goal >= 0.9 each).
#
#   bash bench/gateway.sh          # DURATION=10 ROUNDS=3 CONNECTIONS=16 by default
#
# Installs nginx, wrk, jq, bc from the distribution's packages if missing. Every timed
# response must be a 200 containing "ok".
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

need_tools nginx
machine_note
build_keyward

UPSTREAM_PORT=${UPSTREAM_PORT:-19011}
start_ok_upstream "$UPSTREAM_PORT"

start_keyward
SERVER_PID=$KW_PID
api() { # expected-status method path body
    call "$1" -X "$2" "$KW_URL$3" -H "X-Api-Key: $KW_ADMIN" -H 'Content-Type: application/json' -d "$4"
}
# An hour's access tokens, and tokens that carry the organization attribute.
api 200 PATCH /api/v1/realms/default '{"accessTokenLifetimeSeconds":3600}' >/dev/null
api 200 PUT /api/v1/realms/default/claim-mappers \
    '[{"type":"attribute","claim":"organization","attribute":"organization"}]' >/dev/null
infrastructure=$(api 201 POST /api/v1/infrastructures '{"name":"bench"}' | jq -r .id)
deploy() { # name auth-json → deployment of the upstream under /public/bench/NAME
    local service version
    service=$(api 201 POST /api/v1/api-services "{\"name\":\"$1\",\"auth\":$2}" | jq -r .id)
    version=$(api 201 POST "/api/v1/api-services/$service/versions" "{\"upstream\":\"$UPSTREAM\"}" | jq -r .id)
    api 201 POST /api/v1/deployments \
        "{\"serviceId\":\"$service\",\"infrastructureId\":\"$infrastructure\",\"versionId\":\"$version\"}" >/dev/null
    echo "$service"
}
deploy public '{"type":"none"}' >/dev/null
keyed=$(deploy apikey '{"type":"apiKeys"}')
deploy jwt '{"type":"jwt","realm":"default","audience":"bench","requiredClaims":{"organization":"acme"}}' >/dev/null
GATEWAY_KEY=$(api 201 POST "/api/v1/api-services/$keyed/keys" '{"name":"bench"}' | jq -r .secret)
create_service_account bench-client
account=$(call 200 "$KW_URL/api/v1/service-accounts" -H "X-Api-Key: $KW_ADMIN" | jq -r '.items[] | select(.username == "bench-client") | .id')
api 200 PATCH "/api/v1/users/$account" '{"attributes":{"organization":"acme"}}' >/dev/null
ACCESS_TOKEN=$(call 200 -u "bench-client:$SA_TOKEN" "$KW_URL/auth/realms/default/protocol/openid-connect/token" \
    -d grant_type=client_credentials -d audience=bench | jq -r .access_token)
call 200 "$KW_URL/public/bench/public/" >/dev/null
call 200 -H "Authorization: Bearer $GATEWAY_KEY" "$KW_URL/public/bench/apikey/" >/dev/null
call 401 "$KW_URL/public/bench/apikey/" >/dev/null
call 200 -H "Authorization: Bearer $ACCESS_TOKEN" "$KW_URL/public/bench/jwt/" >/dev/null
call 401 -H "Authorization: Bearer $GATEWAY_KEY" "$KW_URL/public/bench/jwt/" >/dev/null

unset WRK_BODY
export WRK_EXPECT=ok
measure() { # target seconds → "rps busy p50 p99"
    local extra=()
    case $1 in
        public) ;;
        apikey) extra=(-H "Authorization: Bearer $GATEWAY_KEY") ;;
        jwt) extra=(-H "Authorization: Bearer $ACCESS_TOKEN") ;;
    esac
    local result last
    result=$(run_wrk "$2" "$KW_URL/public/bench/$1/" "${extra[@]}")
    last=$(ls -t "$TMP"/wrk.*.txt | head -n1)
    echo "$result $(latency "$last" 50) $(latency "$last" 99)"
}

TARGETS=(public apikey jwt)
measure_rounds "${TARGETS[@]}"
# shellcheck disable=SC2086
{
    public_rps=$(median ${RPS[public]}); apikey_rps=$(median ${RPS[apikey]}); jwt_rps=$(median ${RPS[jwt]})
}
echo
echo "API-key auth / no auth throughput: $(ratio "$apikey_rps" "$public_rps")   (goal >= 0.9)"
echo "JWT auth / no auth throughput:     $(ratio "$jwt_rps" "$public_rps")   (goal >= 0.9)"
