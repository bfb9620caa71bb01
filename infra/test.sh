#!/usr/bin/env bash
# The project's one test command (README "Test"). On a machine with cargo, python3, node/npm and
# Java 17+, it installs the local stack into .tools/, starts it on free loopback ports, runs every
# check, and stops the stack again even when a check fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$SECONDS
step() { printf '\n==> %s (%ss)\n' "$1" "$((SECONDS - started))" >&2; }

step "installing the local stack (cached in .tools/)"
infra/local/stack.sh install

STATE="$(mktemp -d "${TMPDIR:-/tmp}/assignments-test.XXXXXX")"
cleanup() { infra/local/stack.sh stop "$STATE"; rm -rf "$STATE"; }
trap cleanup EXIT INT TERM

step "starting DynamoDB Local and moto"
infra/local/stack.sh start "$STATE" "test-$$"
# shellcheck disable=SC1091
source "$STATE/stack.env"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cfn-lint template.yaml"
.tools/venv/bin/cfn-lint template.yaml

step "cargo test --workspace (store tests run against DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB, table $TABLE_NAME)"
cargo test --workspace

step "all checks passed"
