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

step "installing the local stack (cached in .tools/)"
infra/local/stack.sh install

STATE="$(mktemp -d "${TMPDIR:-/tmp}/assignments-test.XXXXXX")"
gateway_pid=""
cleanup() {
  set +e
  if [ -n "$gateway_pid" ]; then kill "$gateway_pid" 2>/dev/null; wait "$gateway_pid" 2>/dev/null; fi
  infra/local/stack.sh stop "$STATE"
  rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

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

step "sam validate --lint; cfn-lint with the serverless rules (cfn-lint-serverless)"
infra/sam.sh validate --lint
.tools/sam/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

step "cargo test --workspace (store tests run against DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB, table $TABLE_NAME)"
# The end-to-end tests record each function's AWS permissions here for the IAM coverage test.
export IAM_RECORD_DIR="$STATE/iam-uses"
cargo test --workspace

step "IAM coverage: each function's policy in template.yaml allows exactly what the end-to-end tests saw it use"
cargo test --workspace --test iam_coverage -- --nocapture

step "schemathesis against the local gateway (shared/api/openapi.yaml): no 5xx, responses match the schema"
# Same feature set as the test build just made (dev-only SDK features included): one link, no rebuild.
cargo build --quiet --workspace --tests --bin local-gateway
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port=$(free_port); invoke_port=$(free_port)
SESSION_TOKEN_SECRET="schemathesis-session-secret-$(date +%s)-0123456789" \
  target/debug/local-gateway --seed --env-file "$STATE/env.json" --api-port "$api_port" --invoke-port "$invoke_port" \
  > "$STATE/gateway.log" 2>&1 &
gateway_pid=$!
for _ in $(seq 1 150); do [ -f "$STATE/env.json" ] && break; sleep 0.2; done
[ -f "$STATE/env.json" ] || { cat "$STATE/gateway.log" >&2; exit 1; }
admin_token=$(python3 -c "import json,sys; o=json.load(open(sys.argv[1]))['orgs'][0]; print([u for u in o['users'] if u['role']=='org_admin'][0]['token'])" "$STATE/env.json")
# Schemathesis keeps what a run learned from the API's errors in .schemathesis/ and replays it; a second
# run in the same checkout then generated no valid create bodies at all. Every run starts as a clean clone.
rm -rf .schemathesis
.tools/venv/bin/st run shared/api/openapi.yaml --url "http://127.0.0.1:$api_port/api/public/v1" \
  -H "Authorization: Bearer $admin_token" --checks not_a_server_error,response_schema_conformance \
  --max-examples 25 --generation-deterministic
kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true; gateway_pid=""

step "sam build: every function of template.yaml, as a user deploys it (Makefile: one cargo lambda build each)"
infra/sam.sh build
printf '%-16s %14s %14s\n' function "zip bytes" "bootstrap bytes" >&2
for dir in functions/*/; do
  name=$(basename "$dir")
  zip="target/lambda/$name/bootstrap.zip"
  raw=$(python3 -c "import zipfile,sys; print(zipfile.ZipFile(sys.argv[1]).getinfo('bootstrap').file_size)" "$zip")
  printf '%-16s %14s %14s\n' "$name" "$(stat -c %s "$zip")" "$raw" >&2
done

step "all checks passed"
