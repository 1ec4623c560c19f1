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
# Uses target/debug/keyward as the end-to-end tests build it (scripts/suite.sh says why).
# BROWSER_KEYWARD_BIN=/path/to/keyward skips the build; KEYWARD_CHROMIUM=/path/to/chromium
# picks the browser (default /usr/bin/chromium). Needs curl, Node.js >= 20 and npm;
# installs the pinned playwright-core with `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUITE=browser
# shellcheck source=../scripts/suite.sh
source scripts/suite.sh

need_node playwright-core
# The browser is the one KEYWARD_ variable the suite reads; nothing else from the
# caller's environment or a keyward.toml may point the server elsewhere.
CHROMIUM=${KEYWARD_CHROMIUM:-/usr/bin/chromium}
forget_keyward_env
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM (apt-get install chromium, or set KEYWARD_CHROMIUM)"
keyward_bin BROWSER_KEYWARD_BIN

SHOTS=$ROOT/target/portal-screenshots
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
start_keyward

# person USERNAME FIRST LAST [ROLE]: a user with PASSWORD (and ROLE); prints the id.
person() {
  local id
  id=$(call POST /api/v1/users "$ADMIN" "{\"username\":\"$1\",\"email\":\"$1@example.com\",\"firstName\":\"$2\",\"lastName\":\"$3\"}" | field id)
  call PUT "/api/v1/users/$id/password" "$ADMIN" "{\"password\":\"$PASSWORD\"}" >/dev/null
  [ -z "${4:-}" ] || call PUT "/api/v1/users/$id/roles/$4" "$ADMIN" >/dev/null
  echo "$id"
}

USERNAME=pat
PASSWORD="portal-test $(node -p 'require("crypto").randomBytes(9).toString("base64url")')"
user_id=$(person "$USERNAME" Pat Portal)
SERVICE=portal-robot
call POST /api/v1/service-accounts "$ADMIN" "{\"username\":\"$SERVICE\",\"email\":\"portal-robot@example.com\"}" >/dev/null
MANAGER=tess
manager_id=$(person "$MANAGER" Tess Manager token-manager)
ADMIN_USER=ada
person "$ADMIN_USER" Ada Admin admin >/dev/null
echo "browser: user $USERNAME ($user_id) with a password, API Token Manager $MANAGER, admin $ADMIN_USER, service account $SERVICE"

# The deployer's objects: the service churn (API keys, one key) deployed on dev, with
# keyward itself as its upstream (so /public/dev/churn/healthz answers 200); the group
# deployers (pat, tess) holds Deploy on both.
dev_id=$(call POST /api/v1/infrastructures "$ADMIN" '{"name":"dev","description":"sandbox"}' | field id)
churn_id=$(call POST /api/v1/api-services "$ADMIN" '{"name":"churn","description":"predicts churn"}' | field id)
version_id=$(call POST "/api/v1/api-services/$churn_id/versions" "$ADMIN" "{\"upstream\":\"$URL\"}" | field id)
call POST /api/v1/deployments "$ADMIN" "{\"serviceId\":\"$churn_id\",\"infrastructureId\":\"$dev_id\",\"versionId\":\"$version_id\"}" >/dev/null
call POST "/api/v1/api-services/$churn_id/keys" "$ADMIN" '{"name":"dev"}' >/dev/null
deployers_id=$(call POST /api/v1/groups "$ADMIN" '{"name":"deployers"}' | field id)
call PUT "/api/v1/groups/$deployers_id/members/$user_id" "$ADMIN" >/dev/null
# tess is a deployer too: a token manager may make tokens only for people whose groups
# are hers as well.
call PUT "/api/v1/groups/$deployers_id/members/$manager_id" "$ADMIN" >/dev/null
call PUT "/api/v1/infrastructures/$dev_id/permissions/$deployers_id" "$ADMIN" '{"privilege":"deploy"}' >/dev/null
call PUT "/api/v1/api-services/$churn_id/permissions/$deployers_id" "$ADMIN" '{"privilege":"deploy"}' >/dev/null
echo "browser: API service churn deployed on dev, with a key; $USERNAME deploys it through the group deployers"

npm_install "$ROOT/browser"
cd "$ROOT/browser"
echo "browser: playwright-core $(node -p "require('./node_modules/playwright-core/package.json').version"), $("$CHROMIUM" --version 2>/dev/null || echo "chromium at $CHROMIUM"), node $(node --version)"
PORTAL_URL=$URL PORTAL_USERNAME=$USERNAME PORTAL_PASSWORD=$PASSWORD PORTAL_SERVICE_ACCOUNT=$SERVICE PORTAL_MANAGER=$MANAGER \
  PORTAL_ADMIN=$ADMIN_USER \
  PORTAL_CHROMIUM=$CHROMIUM PORTAL_SCREENSHOTS=$SHOTS TMPDIR=$TMP \
  node portal.test.mjs
