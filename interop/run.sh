#!/usr/bin/env bash
# The OIDC interop suite: starts keyward on a free port with a fresh data dir, makes one
# realm per signing algorithm (default and es: ES256, rsa: RS256, ed: EdDSA), a service
# account and an access token (client_credentials, with curl) in each, then runs
# verify.mjs, which checks the tokens with jose and openid-client, unmodified.
#
#   bash interop/run.sh
#
# Uses target/debug/keyward as the end-to-end tests build it: `cargo test -p keyward --test it
# --no-run` is a no-op right after CI's PostgreSQL step, where `cargo build` would compile
# several crates again (the tests' dev-dependencies change their features).
# INTEROP_KEYWARD_BIN=/path/to/keyward skips the build. Needs curl, Node.js >= 20 and npm;
# installs the pinned libraries with `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() {
  printf 'interop: %s\n' "$*" >&2
  exit 1
}

for tool in curl node npm; do
  command -v "$tool" >/dev/null || die "$tool is missing (Node.js >= 20 with npm, and curl, are needed)"
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old: jose 6 and openid-client 6 need Node.js >= 20"

# Nothing from the caller's environment or a keyward.toml may point the server elsewhere.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^KEYWARD_' || true)

if [ -n "${INTEROP_KEYWARD_BIN:-}" ]; then
  BIN=$INTEROP_KEYWARD_BIN
else
  echo "interop: building target/debug/keyward (cargo test -p keyward --test it --no-run)"
  cargo test -q -p keyward --test it --no-run
  BIN=$ROOT/target/debug/keyward
fi
[ -x "$BIN" ] || die "no keyward binary at $BIN"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/keyward-interop.XXXXXX")
DATA=$TMP/data
SERVER_PID=
cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$TMP/server.out" ]; then
    echo "interop: FAILED; the server's last log lines:" >&2
    tail -n 20 "$TMP/server.out" >&2 || true
    grep -v '^kwa_' "$TMP/server.err" >&2 || true
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs from the temp dir so no keyward.toml of the checkout is picked up.
cd "$TMP"
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$DATA" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
URL=
for _ in $(seq 1 300); do
  URL=$(sed -n 's|^keyward listening on \(http://[^ ]*\)$|\1|p' "$TMP/server.out" | head -n 1)
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "keyward exited before it was ready"
  sleep 0.1
done
[ -n "$URL" ] || die "keyward printed no ready line within 30 s"
ADMIN=$(grep -m 1 '^kwa_' "$TMP/server.err" || true)
[ -n "$ADMIN" ] || die "no bootstrap admin key (kwa_…) on keyward's stderr"
echo "interop: keyward at $URL (data dir $DATA)"

# call METHOD PATH ADMIN_KEY [JSON]: prints the body; dies with it on any status >= 300.
call() {
  local method=$1 path=$2 key=$3 body=${4:-} status
  local args=(-sS -o "$TMP/response" -w '%{http_code}' -X "$method" "$URL$path" -H "X-Api-Key: $key")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  status=$(curl "${args[@]}") || die "$method $path: curl failed"
  [ "$status" -lt 300 ] || die "$method $path answered $status: $(cat "$TMP/response")"
  cat "$TMP/response"
}

# field NAME: reads JSON on stdin and prints its string field NAME, or dies.
field() {
  node -e '
    let text = "";
    process.stdin.on("data", (chunk) => (text += chunk)).on("end", () => {
      const value = JSON.parse(text)[process.argv[1]];
      if (typeof value !== "string" || value === "") {
        console.error(`no "${process.argv[1]}" in ${text}`);
        process.exit(1);
      }
      console.log(value);
    });' "$1"
}

REALMS_JSON=$TMP/realms.json
printf '[' >"$REALMS_JSON"
separator=
for spec in default:ES256 es:ES256 rsa:RS256 ed:EdDSA; do
  realm=${spec%%:*} alg=${spec#*:}
  if [ "$realm" = default ]; then
    key=$ADMIN
  else
    call POST /api/v1/realms "$ADMIN" "{\"name\":\"$realm\",\"signingAlg\":\"$alg\"}" >/dev/null
    key=$("$BIN" admin-key create --realm "$realm" --data-dir "$DATA" --name interop)
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

cd "$ROOT/interop"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
version() { node -p "require('./node_modules/$1/package.json').version"; }
echo "interop: jose $(version jose), openid-client $(version openid-client), oauth4webapi $(version oauth4webapi), node $(node --version)"
node verify.mjs "$REALMS_JSON"
