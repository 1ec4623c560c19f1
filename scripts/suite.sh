# What the Node.js suites (interop/run.sh, browser/run.sh) share, sourced by them after
# they set SUITE (the name their messages start with) and cd to the checkout's root:
#
#   need_node WHY            curl, node and npm are there, node >= 20 (WHY says who needs it)
#   forget_keyward_env       no KEYWARD_ variable of the caller reaches the server
#   keyward_bin OVERRIDE     sets BIN: $OVERRIDE's value, else target/debug/keyward as the
#                            end-to-end tests build it
#   start_keyward            keyward on a free port, fresh data dir under TMP; sets URL,
#                            ADMIN (the bootstrap admin key), DATA; stops it at exit
#   call METHOD PATH KEY [JSON]   prints the body; dies with it on any status >= 300
#   field NAME               prints the string field NAME of the JSON on stdin, or dies
#   npm_install DIR          the pinned packages of DIR (npm ci)
#
# `cargo test -p keyward --test it --no-run` rather than `cargo build`: it is a no-op right
# after CI's PostgreSQL step, where `cargo build` would compile several crates again (the
# tests' dev-dependencies change their features).

die() {
  printf '%s: %s\n' "$SUITE" "$*" >&2
  exit 1
}

need_node() {
  local tool major
  for tool in curl node npm; do
    command -v "$tool" >/dev/null || die "$tool is missing (Node.js >= 20 with npm, and curl, are needed)"
  done
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js $(node --version) is too old: $1 need(s) Node.js >= 20"
}

forget_keyward_env() {
  while read -r name; do unset "$name"; done < <(compgen -e | grep '^KEYWARD_' || true)
}

keyward_bin() {
  local override=${!1:-}
  if [ -n "$override" ]; then
    BIN=$override
  else
    echo "$SUITE: building target/debug/keyward (cargo test -p keyward --test it --no-run)"
    cargo test -q -p keyward --test it --no-run
    BIN=$PWD/target/debug/keyward
  fi
  [ -x "$BIN" ] || die "no keyward binary at $BIN"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/keyward-$SUITE.XXXXXX")
DATA=$TMP/data
SERVER_PID=
suite_cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$TMP/server.out" ]; then
    echo "$SUITE: FAILED; the server's last log lines:" >&2
    tail -n 20 "$TMP/server.out" >&2 || true
    grep -v '^kwa_' "$TMP/server.err" >&2 || true
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap suite_cleanup EXIT
trap 'exit 130' INT TERM

start_keyward() {
  # From the temp dir, so no keyward.toml of the checkout is picked up.
  (cd "$TMP" && exec "$BIN" serve --listen 127.0.0.1:0 --data-dir "$DATA" >"$TMP/server.out" 2>"$TMP/server.err") &
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
  echo "$SUITE: keyward at $URL (data dir $DATA)"
}

call() {
  local method=$1 path=$2 key=$3 body=${4:-} status
  local args=(-sS -o "$TMP/response" -w '%{http_code}' -X "$method" "$URL$path" -H "X-Api-Key: $key")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  status=$(curl "${args[@]}") || die "$method $path: curl failed"
  [ "$status" -lt 300 ] || die "$method $path answered $status: $(cat "$TMP/response")"
  cat "$TMP/response"
}

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

npm_install() {
  if [ -f "$1/package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$1" && npm install --no-audit --no-fund --loglevel=error)
  fi
}
