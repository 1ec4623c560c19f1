#!/usr/bin/env bash
# client_credentials throughput of keyward's token endpoint against the reference OIDC
# provider (panva/node-oidc-provider, /work/shared/peers/oidc-provider or $PEER_DIR), in
# one run, with the same wrk settings. Each server is pinned to one core (SERVER_CPU) and
# wrk to another (LOAD_CPU), so tokens/s is tokens/s on one core. Both sign ES256
# access tokens (typ at+jwt, 5 minutes). Measurements alternate keyward, peer, keyward, …
# ROUNDS times each; the medians and their ratio are printed at the end.
#
#   bash bench/token_endpoint.sh            # DURATION=10 ROUNDS=3 CONNECTIONS=16 by default
#
# Every timed response must be a 200 carrying an access_token, or the run fails.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PEER_DIR=${PEER_DIR:-/work/shared/peers/oidc-provider}
PEER_PORT=${PEER_PORT:-3999}
KEYCLOAK_PER_VCPU=120 # Keycloak's sizing guide: client-credential grants per second per vCPU

need_tools
command -v node >/dev/null || die "the peer needs Node.js (node, npm)"
machine_note
build_keyward

# keyward: a service account whose kws_ token is the client secret (README, "Access tokens").
start_keyward
create_service_account bench-etl
KW_TOKEN_URL="$KW_URL/auth/realms/default/protocol/openid-connect/token"
KW_BASIC=$(printf '%s:%s' "$SA_NAME" "$SA_TOKEN" | base64 -w0)
first=$(call 200 -u "$SA_NAME:$SA_TOKEN" -d grant_type=client_credentials "$KW_TOKEN_URL")
header=$(jq -r .access_token <<<"$first" | cut -d. -f1 | tr '_-' '/+' | base64 -d 2>/dev/null || true)
log "keyward token header: $header"
grep -q '"ES256"' <<<"$header" || die "keyward's default realm should sign ES256"

# The peer, as its run.sh starts it (npm install into PEER_WORK the first time), pinned
# to the same core.
PEER_WORK=${PEER_WORK:-/tmp/keyward-peer-oidc-provider}
WORK="$PEER_WORK" PORT="$PEER_PORT" taskset -c "$SERVER_CPU" bash "$PEER_DIR/run.sh" \
    >"$TMP/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")
wait_for_line "$TMP/peer.log" '^ready' 300
PEER_TOKEN_URL="http://127.0.0.1:$PEER_PORT/token"
PEER_BASIC=$(printf 'svc:secret' | base64 -w0)
first=$(call 200 -u svc:secret -d grant_type=client_credentials "$PEER_TOKEN_URL")
header=$(jq -r .access_token <<<"$first" | cut -d. -f1 | tr '_-' '/+' | base64 -d 2>/dev/null || true)
log "peer token header: $header"
grep -q '"ES256"' <<<"$header" || die "the peer should sign ES256"
log "peer pid $PEER_PID, core $SERVER_CPU"

export WRK_BODY=grant_type=client_credentials WRK_EXPECT='"access_token":"eyJ'
measure() { # target seconds
    case $1 in
        keyward) SERVER_PID=$KW_PID run_wrk "$2" "$KW_TOKEN_URL" -H "Authorization: Basic $KW_BASIC" ;;
        peer) SERVER_PID=$PEER_PID run_wrk "$2" "$PEER_TOKEN_URL" -H "Authorization: Basic $PEER_BASIC" ;;
    esac
}

log "warm-up: ${WARMUP}s each"
measure keyward "$WARMUP" >/dev/null
measure peer "$WARMUP" >/dev/null

declare -a KW_RPS PEER_RPS KW_CPU PEER_CPU
log "measuring: $ROUNDS rounds of ${DURATION}s each, wrk -t1 -c$CONNECTIONS on core $LOAD_CPU"
for round in $(seq 1 "$ROUNDS"); do
    for target in keyward peer; do
        result=$(measure_clean "$target" "$DURATION")
        read -r rps busy <<<"$result"
        per_cpu=$(per_cpu_second "$rps" "$busy")
        if [ "$target" = keyward ]; then
            KW_RPS+=("$rps") KW_CPU+=("$per_cpu")
        else
            PEER_RPS+=("$rps") PEER_CPU+=("$per_cpu")
        fi
        printf 'round %d  %-7s %8.1f tokens/s  server CPU %5.1f %% of a core  %8.1f tokens per CPU-second\n' \
            "$round" "$target" "$rps" "$(echo "$busy * 100" | bc)" "$per_cpu"
    done
done

kw=$(median "${KW_RPS[@]}")
peer=$(median "${PEER_RPS[@]}")
kw_cpu=$(median "${KW_CPU[@]}")
peer_cpu=$(median "${PEER_CPU[@]}")
echo
echo "client_credentials, ES256, wrk -t1 -c$CONNECTIONS -d${DURATION}s, each server pinned to 1 core, medians of $ROUNDS:"
echo "                 tokens/s   tokens per CPU-second"
printf '  keyward  %12.1f %16.1f   (goal >= 2000/s/core)\n' "$kw" "$kw_cpu"
printf '  peer     %12.1f %16.1f   (node-oidc-provider, same run)\n' "$peer" "$peer_cpu"
printf '  keyward / peer    %s %16s\n' "$(ratio "$kw" "$peer")" "$(ratio "$kw_cpu" "$peer_cpu")"
printf '  keyward / Keycloak sizing guide (%d/s/vCPU)  %s per core, %s per CPU-second\n' \
    "$KEYCLOAK_PER_VCPU" "$(ratio "$kw" "$KEYCLOAK_PER_VCPU")" "$(ratio "$kw_cpu" "$KEYCLOAK_PER_VCPU")"
