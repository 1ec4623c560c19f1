#!/usr/bin/env bash
# GET /api/v1/auth/check with a valid credential against GET /healthz (the no-op route,
# behind the same middleware) on the same keyward, in one run, with the same wrk
# settings. keyward is pinned to one core (SERVER_CPU) and wrk to another (LOAD_CPU).
# Credentials: an opaque user API key (X-Api-Key: kwu_…) and an ES256 access token
# (Authorization: Bearer eyJ…, from client_credentials; the same token throughout, so
# after its first request it is the verifier's cached path, as for any client reusing
# its token). Measurements alternate healthz, api key, bearer, … ROUNDS times; the
# medians and the ratios to healthz are printed at the end.
#
#   bash bench/auth_check.sh                # DURATION=10 ROUNDS=3 CONNECTIONS=16 by default
#
# Every timed response must be a 200 (auth/check answers 401 to a refused credential).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

need_tools
machine_note
build_keyward
start_keyward

# A user with an API key (README, Quickstart).
user=$(call 201 -X POST "$KW_URL/api/v1/users" -H "X-Api-Key: $KW_ADMIN" -H 'Content-Type: application/json' \
    -d '{"username":"ada","email":"ada@example.com","firstName":"Ada","lastName":"Lovelace"}')
user_id=$(jq -r .id <<<"$user")
API_KEY=$(call 201 -X POST "$KW_URL/api/v1/users/$user_id/api-keys" -H "X-Api-Key: $KW_ADMIN" \
    -H 'Content-Type: application/json' -d '{"name":"bench"}' | jq -r .secret)
[[ $API_KEY == kwu_* ]] || die "no API key: $API_KEY"

# An access token for a service account; an hour's lifetime so it outlives the run.
call 200 -X PATCH "$KW_URL/api/v1/realms/default" -H "X-Api-Key: $KW_ADMIN" \
    -H 'Content-Type: application/json' -d '{"accessTokenLifetimeSeconds":3600}' >/dev/null
create_service_account bench-etl
ACCESS_TOKEN=$(call 200 -u "$SA_NAME:$SA_TOKEN" -d grant_type=client_credentials \
    "$KW_URL/auth/realms/default/protocol/openid-connect/token" | jq -r .access_token)
[[ $ACCESS_TOKEN == eyJ* ]] || die "no access token: $ACCESS_TOKEN"

CHECK_URL="$KW_URL/api/v1/auth/check"
for credential in "X-Api-Key: $API_KEY" "Authorization: Bearer $ACCESS_TOKEN"; do
    answer=$(call 200 -H "$credential" "$CHECK_URL")
    log "auth/check answers: $answer"
done
call 401 -H "X-Api-Key: kwu_notavalidkey" "$CHECK_URL" >/dev/null # a refusal is not a 200

unset WRK_BODY
measure() { # target seconds
    case $1 in
        healthz) WRK_EXPECT='"status"' run_wrk "$2" "$KW_URL/healthz" ;;
        api_key) WRK_EXPECT='"credentialKind":"user_api_key"' run_wrk "$2" "$CHECK_URL" -H "X-Api-Key: $API_KEY" ;;
        bearer) WRK_EXPECT='"credentialKind":"access_token"' run_wrk "$2" "$CHECK_URL" \
            -H "Authorization: Bearer $ACCESS_TOKEN" ;;
    esac
}
SERVER_PID=$KW_PID
TARGETS=(healthz api_key bearer)

log "warm-up: ${WARMUP}s each"
for target in "${TARGETS[@]}"; do measure "$target" "$WARMUP" >/dev/null; done

declare -A RPS CPU
log "measuring: $ROUNDS rounds of ${DURATION}s each, wrk -t1 -c$CONNECTIONS on core $LOAD_CPU"
for round in $(seq 1 "$ROUNDS"); do
    for target in "${TARGETS[@]}"; do
        result=$(measure_clean "$target" "$DURATION")
        read -r rps busy <<<"$result"
        per_cpu=$(per_cpu_second "$rps" "$busy")
        RPS[$target]="${RPS[$target]:-} $rps"
        CPU[$target]="${CPU[$target]:-} $per_cpu"
        printf 'round %d  %-8s %9.1f requests/s  server CPU %5.1f %% of a core  %9.1f requests per CPU-second\n' \
            "$round" "$target" "$rps" "$(echo "$busy * 100" | bc)" "$per_cpu"
    done
done

# shellcheck disable=SC2086 # the lists are space-separated numbers
healthz=$(median ${RPS[healthz]})
# shellcheck disable=SC2086
healthz_cpu=$(median ${CPU[healthz]})
echo
echo "keyward pinned to 1 core, wrk -t1 -c$CONNECTIONS -d${DURATION}s, medians of $ROUNDS (goal: auth/check >= 0.9 x healthz):"
printf '  %-36s %11s %8s %15s %8s\n' "" "requests/s" "ratio" "per CPU-second" "ratio"
for target in healthz api_key bearer; do
    # shellcheck disable=SC2086
    value=$(median ${RPS[$target]})
    # shellcheck disable=SC2086
    value_cpu=$(median ${CPU[$target]})
    case $target in
        healthz) label="GET /healthz (no-op, baseline)" ;;
        api_key) label="GET /api/v1/auth/check, API key" ;;
        bearer) label="GET /api/v1/auth/check, Bearer JWT" ;;
    esac
    printf '  %-36s %11.1f %8s %15.1f %8s\n' "$label" "$value" "$(ratio "$value" "$healthz")" "$value_cpu" \
        "$(ratio "$value_cpu" "$healthz_cpu")"
done
