#!/usr/bin/env bash
# The portal's browser suite: starts keyward on a free port with a fresh data dir,
# creates with the bootstrap admin key a user `pat`, an API Token Manager `tess` and an
# admin `ada` (role admin) with a password, a service account, and the API service
# `churn` deployed on `dev` (pat deploys it through a group), then runs portal.test.mjs,
# which drives headless Chromium (Debian's `chromium`, through playwright-core) through
# the portal. Screenshots of each page go
# to target/portal-screenshots/.
#
#   bash browser/run.sh
#
# Uses target/debug/keyward as the end-to-end tests build it (see interop/run.sh for why
# `cargo test -p keyward --test it --no-run` rather than `cargo build`).
# BROWSER_KEYWARD_BIN=/path/to/keyward skips the build; KEYWARD_CHROMIUM=/path/to/chromium
# picks the browser (default /usr/bin/chromium). Needs curl, Node.js >= 20 and npm;
# installs the pinned playwright-core with `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() {
  printf 'browser: %s\n' "$*" >&2
  exit 1
}

for tool in curl node npm; do
  command -v "$tool" >/dev/null || die "$tool is missing (Node.js >= 20 with npm, and curl, are needed)"
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old: playwright-core needs Node.js >= 20"

# The browser is the one KEYWARD_ variable the suite reads; nothing else from the
# caller's environment or a keyward.toml may point the server elsewhere.
CHROMIUM=${KEYWARD_CHROMIUM:-/usr/bin/chromium}
while read -r name; do unset "$name"; done < <(compgen -e | grep '^KEYWARD_' || true)
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM (apt-get install chromium, or set KEYWARD_CHROMIUM)"

if [ -n "${BROWSER_KEYWARD_BIN:-}" ]; then
  BIN=$BROWSER_KEYWARD_BIN
else
  echo "browser: building target/debug/keyward (cargo test -p keyward --test it --no-run)"
  cargo test -q -p keyward --test it --no-run
  BIN=$ROOT/target/debug/keyward
fi
[ -x "$BIN" ] || die "no keyward binary at $BIN"

SHOTS=$ROOT/target/portal-screenshots
rm -rf "$SHOTS"
mkdir -p "$SHOTS"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/keyward-browser.XXXXXX")
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
    echo "browser: FAILED; the server's last log lines:" >&2
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
echo "browser: keyward at $URL (data dir $DATA)"

# call METHOD PATH [JSON]: prints the body; dies with it on any status >= 300.
call() {
  local method=$1 path=$2 body=${3:-} status
  local args=(-sS -o "$TMP/response" -w '%{http_code}' -X "$method" "$URL$path" -H "X-Api-Key: $ADMIN")
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

USERNAME=pat
PASSWORD="portal-test $(node -p 'require("crypto").randomBytes(9).toString("base64url")')"
user_id=$(call POST /api/v1/users "{\"username\":\"$USERNAME\",\"email\":\"pat@example.com\",\"firstName\":\"Pat\",\"lastName\":\"Portal\"}" | field id)
call PUT "/api/v1/users/$user_id/password" "{\"password\":\"$PASSWORD\"}" >/dev/null
SERVICE=portal-robot
call POST /api/v1/service-accounts "{\"username\":\"$SERVICE\",\"email\":\"portal-robot@example.com\"}" >/dev/null
MANAGER=tess
manager_id=$(call POST /api/v1/users "{\"username\":\"$MANAGER\",\"email\":\"tess@example.com\",\"firstName\":\"Tess\",\"lastName\":\"Manager\"}" | field id)
call PUT "/api/v1/users/$manager_id/password" "{\"password\":\"$PASSWORD\"}" >/dev/null
call PUT "/api/v1/users/$manager_id/roles/token-manager" >/dev/null
ADMIN_USER=ada
admin_id=$(call POST /api/v1/users "{\"username\":\"$ADMIN_USER\",\"email\":\"ada@example.com\",\"firstName\":\"Ada\",\"lastName\":\"Admin\"}" | field id)
call PUT "/api/v1/users/$admin_id/password" "{\"password\":\"$PASSWORD\"}" >/dev/null
call PUT "/api/v1/users/$admin_id/roles/admin" >/dev/null
echo "browser: user $USERNAME ($user_id) with a password, API Token Manager $MANAGER, admin $ADMIN_USER, service account $SERVICE"

# The deployer's objects: the service churn (API keys, one key) deployed on dev, with
# keyward itself as its upstream (so /public/dev/churn/healthz answers 200); the group
# deployers (pat) holds Deploy on both.
dev_id=$(call POST /api/v1/infrastructures '{"name":"dev","description":"sandbox"}' | field id)
churn_id=$(call POST /api/v1/api-services '{"name":"churn","description":"predicts churn"}' | field id)
version_id=$(call POST "/api/v1/api-services/$churn_id/versions" "{\"upstream\":\"$URL\"}" | field id)
call POST /api/v1/deployments "{\"serviceId\":\"$churn_id\",\"infrastructureId\":\"$dev_id\",\"versionId\":\"$version_id\"}" >/dev/null
call POST "/api/v1/api-services/$churn_id/keys" '{"name":"dev"}' >/dev/null
deployers_id=$(call POST /api/v1/groups '{"name":"deployers"}' | field id)
call PUT "/api/v1/groups/$deployers_id/members/$user_id" >/dev/null
call PUT "/api/v1/infrastructures/$dev_id/permissions/$deployers_id" '{"privilege":"deploy"}' >/dev/null
call PUT "/api/v1/api-services/$churn_id/permissions/$deployers_id" '{"privilege":"deploy"}' >/dev/null
echo "browser: API service churn deployed on dev, with a key; $USERNAME deploys it through the group deployers"

cd "$ROOT/browser"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
echo "browser: playwright-core $(node -p "require('./node_modules/playwright-core/package.json').version"), $("$CHROMIUM" --version 2>/dev/null || echo "chromium at $CHROMIUM"), node $(node --version)"
PORTAL_URL=$URL PORTAL_USERNAME=$USERNAME PORTAL_PASSWORD=$PASSWORD PORTAL_SERVICE_ACCOUNT=$SERVICE PORTAL_MANAGER=$MANAGER \
  PORTAL_ADMIN=$ADMIN_USER \
  PORTAL_CHROMIUM=$CHROMIUM PORTAL_SCREENSHOTS=$SHOTS TMPDIR=$TMP \
  node portal.test.mjs
