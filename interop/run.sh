#!/usr/bin/env bash
# The OIDC interop suite: starts keyward on a free port with a fresh data dir, makes one
# realm per signing algorithm (default and es: ES256, rsa: RS256, ed: EdDSA), a service
# account and an access token (client_credentials, with curl) in each, then runs
# verify.mjs, which checks the tokens with jose and openid-client, unmodified.
#
#   bash interop/run.sh
#
# Uses target/debug/keyward as the end-to-end tests build it (scripts/suite.sh says why);
# INTEROP_KEYWARD_BIN=/path/to/keyward skips the build. Needs curl, Node.js >= 20 and npm;
# installs the pinned libraries with `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUITE=interop
# shellcheck source=../scripts/suite.sh
source scripts/suite.sh

need_node "jose 6 and openid-client 6"
forget_keyward_env
keyward_bin INTEROP_KEYWARD_BIN
start_keyward

REALMS_JSON=$TMP/realms.json
printf '[' >"$REALMS_JSON"
separator=
for spec in default:ES256 es:ES256 rsa:RS256 ed:EdDSA; do
  realm=${spec%%:*} alg=${spec#*:}
  if [ "$realm" = default ]; then
    key=$ADMIN
  else
    call POST /api/v1/realms "$ADMIN" "{\"name\":\"$realm\",\"signingAlg\":\"$alg\"}" >/dev/null
    key=$(cd "$TMP" && "$BIN" admin-key create --realm "$realm" --data-dir "$DATA" --name interop)
    case $key in kwa_*) ;; *) die "admin-key create --realm $realm printed no key" ;; esac
  fi
  username=interop-$realm
  idp_id=$(call POST /v4/serviceAccounts "$key" "{\"username\":\"$username\",\"email\":\"$username@example.com\"}" | field idpId)
  secret=$(call POST "/v4/serviceAccounts/$idp_id/tokens" "$key" '{"name":"interop"}' | field token)
  issuer=$URL/auth/realms/$realm
  status=$(curl -sS -o "$TMP/response" -w '%{http_code}' -u "$username:$secret" \
    -d grant_type=client_credentials "$issuer/protocol/openid-connect/token") || die "token request to $realm failed"
  [ "$status" = 200 ] || die "client_credentials in realm $realm answered $status: $(cat "$TMP/response")"
  access_token=$(field access_token <"$TMP/response")
  echo "interop: realm $realm ($alg): service account $username, access token of ${#access_token} bytes"
  printf '%s{"name":"%s","issuer":"%s","alg":"%s","clientId":"%s","clientSecret":"%s","accessToken":"%s"}' \
    "$separator" "$realm" "$issuer" "$alg" "$username" "$secret" "$access_token" >>"$REALMS_JSON"
  separator=,
done
printf ']\n' >>"$REALMS_JSON"

npm_install "$ROOT/interop"
cd "$ROOT/interop"
version() { node -p "require('./node_modules/$1/package.json').version"; }
echo "interop: jose $(version jose), openid-client $(version openid-client), oauth4webapi $(version oauth4webapi), node $(node --version)"
node verify.mjs "$REALMS_JSON"
