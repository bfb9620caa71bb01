#!/usr/bin/env bash
# The project's one test command (README "Test"). On a machine with cargo, python3, node/npm,
# Java 17+ and make, it installs the local stack into .tools/, starts it on free loopback ports, runs every
# check, and stops the stack again even when a check fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$SECONDS
step() { printf '\n==> %s (%ss)\n' "$1" "$((SECONDS - started))" >&2; }
# A clean run gains nothing from incremental compilation, and its caches would take ~1.4 GB of target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

STATE="$(mktemp -d "${TMPDIR:-/tmp}/assignments-test.XXXXXX")"
gateway_pid=""
tools_pid=""
cleanup() {
  set +e
  if [ -n "$tools_pid" ]; then kill -- "-$tools_pid" 2>/dev/null; wait "$tools_pid" 2>/dev/null; fi
  if [ -n "$gateway_pid" ]; then kill "$gateway_pid" 2>/dev/null; wait "$gateway_pid" 2>/dev/null; fi
  infra/local/stack.sh stop "$STATE"
  rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

step "installing the local stack and the test tools (cached in .tools/)"
# The code scanners, LibreOffice Calc (apt) and the SAM CLI (installs of minutes on a new machine) install
# in the background while the Rust checks run; the steps that need them wait for them (tools_ready).
# Its own process group (setsid), so that a failing run stops every pip it started.
setsid -w bash -c 'infra/local/stack.sh install-scanners && infra/local/stack.sh install-spreadsheet && infra/sam.sh --version' > "$STATE/tools.log" 2>&1 &
tools_pid=$!
tools_ready() {
  if [ -n "$tools_pid" ]; then
    wait "$tools_pid" || { cat "$STATE/tools.log" >&2; echo "installing the scanners or the SAM CLI failed" >&2; exit 1; }
    tools_pid=""
  fi
}
infra/local/stack.sh install-fuzz
infra/local/stack.sh install-build

step "starting DynamoDB Local and moto"
infra/local/stack.sh start "$STATE" "test-$$"
# shellcheck disable=SC1091
source "$STATE/stack.env"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# `test = false` targets are not in --all-targets.
cargo clippy --workspace --test iam_coverage --quiet -- -D warnings

step "cargo doc of the shared crates, warnings as errors (every doc link resolves)"
# The shared crates hold the docs worth reading; the 19 thin function crates would triple the step's time.
# shellcheck disable=SC2046
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet $(for c in shared/*/; do c=$(basename "$c"); [ "$c" = workspace-hack ] || printf -- '-p %s ' "$c"; done)

step "sam validate --lint; cfn-lint with the serverless rules (cfn-lint-serverless)"
tools_ready
infra/sam.sh validate --lint
.tools/sam/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

step "cargo test --workspace (store tests run against DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB, table $TABLE_NAME)"
# The end-to-end tests record each function's AWS permissions here for the IAM coverage test.
export IAM_RECORD_DIR="$STATE/iam-uses"
# The test build and the run command's gateway in one cargo invocation (one feature set: no rebuild by
# the fuzz step below); tests/tests/webhook_restart.rs runs (and kills) that gateway as its own process.
cargo build --quiet --workspace --tests --bin local-gateway
export LOCAL_GATEWAY_BIN="$ROOT/target/debug/local-gateway"
cargo test --workspace

step "IAM coverage: each function's policy in template.yaml allows exactly what the end-to-end tests saw it use"
cargo test --workspace --test iam_coverage -- --nocapture

step "schemathesis --checks all against the local gateway (shared/api/openapi.yaml): responses match the schema, schema-valid requests are accepted, invalid ones refused, no 5xx"
# The gateway built with the tests above.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port=$(free_port); invoke_port=$(free_port)
# The fuzzer runs as an org admin of org-acme, whose requests the gateway counts but never refuses for
# their rate (--unlimited-org: a gateway-only setting no deployed function contains, tests/tests/build.rs),
# so its requests reach the handlers instead of 429s.
SESSION_TOKEN_SECRET="schemathesis-session-secret-$(date +%s)-0123456789" \
  target/debug/local-gateway --seed --env-file "$STATE/env.json" --api-port "$api_port" --invoke-port "$invoke_port" \
  --unlimited-org org-acme > "$STATE/gateway.log" 2>&1 &
gateway_pid=$!
for _ in $(seq 1 150); do [ -f "$STATE/env.json" ] && break; sleep 0.2; done
[ -f "$STATE/env.json" ] || { cat "$STATE/gateway.log" >&2; exit 1; }
# .local/env.json names the credentials a client must use: DynamoDB Local shows the table only to them.
.tools/venv/bin/python - "$STATE/env.json" <<'PY'
import json, sys, boto3
env = json.load(open(sys.argv[1]))
c = env["credentials"]
ddb = boto3.client("dynamodb", endpoint_url=env["awsEndpoints"]["dynamodb"], region_name=env["region"],
                   aws_access_key_id=c["accessKeyId"], aws_secret_access_key=c["secretAccessKey"])
assert env["tableName"] in ddb.list_tables()["TableNames"], "env.json's credentials do not see its table"
print("env.json: its credentials see table", env["tableName"])
PY
admin_token=$(python3 -c "import json,sys; o=json.load(open(sys.argv[1]))['orgs'][0]; assert o['orgId'] == 'org-acme'; print([u for u in o['users'] if u['role']=='org_admin'][0]['token'])" "$STATE/env.json")
# Schemathesis keeps what a run learned from the API's errors in .schemathesis/ and replays it; a second
# run in the same checkout then generated no valid create bodies at all. Every run starts as a clean clone.
rm -rf .schemathesis
# Every check runs but two: unsupported_method (API Gateway's HTTP APIs answer 404, not 405, for a method a
# path does not have, and so does the local gateway) and use_after_free (DELETE /assignments/{id}
# deactivates: the v1 contract keeps a deleted assignment readable, history is never erased). The hooks
# make positive cases valid in what a schema cannot state (infra/local/schemathesis_hooks.py).
FUZZ_ENV_FILE="$STATE/env.json" SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=infra/local \
  .tools/venv/bin/st run shared/api/openapi.yaml \
  --url "http://127.0.0.1:$api_port/api/public/v1" -H "Authorization: Bearer $admin_token" \
  --checks all --exclude-checks unsupported_method,use_after_free \
  --max-examples 25 --generation-deterministic --report har --report-har-path "$STATE/schemathesis.har"
.tools/venv/bin/python infra/local/fuzz_report.py "$STATE/schemathesis.har" --min-handled 0.9
kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true; gateway_pid=""

step "sam build: every function of template.yaml through the Makefile, as a user deploys it (profile deploy-check)"
# The deploy path end to end — template, Makefile, cargo lambda, one bootstrap per function, SAM's
# artifacts — built with Cargo.toml's deploy-check profile instead of release: release's size
# optimisation (LTO, one codegen unit) costs a minute of linking per function and proves nothing about
# the path. What release builds are like (zip sizes, cold starts) is the cold-start bench's (infra/bench/README.md).
# Into a build directory of its own: .aws-sam/build, which `sam deploy` takes, never holds these.
LAMBDA_PROFILE=deploy-check infra/sam.sh build --build-dir "$STATE/sam-build"
for id in $(sed -n 's/^build-\([A-Za-z]*\): PACKAGE := .*/\1/p' Makefile); do
  [ -x "$STATE/sam-build/$id/bootstrap" ] || { echo "sam build left no bootstrap for $id" >&2; exit 1; }
done
echo "sam build: a bootstrap for each of the $(grep -c '^build-[A-Za-z]*: PACKAGE' Makefile) functions" >&2

step "all checks passed in $((SECONDS - started)) s"
