#!/usr/bin/env bash
# The SAM CLI, pinned (infra/sam-requirements.lock) and installed on first use into the repo's ignored
# .tools/sam venv, together with cfn-lint and the serverless rules (cfn-lint-serverless).
#
#   infra/sam.sh build                 build every function (Makefile, in source: see samconfig.toml)
#   infra/sam.sh deploy --guided       deploy the built stack to your AWS account
#   infra/sam.sh validate --lint       what infra/test.sh checks
#   .tools/sam/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v make >/dev/null 2>&1 || { echo "missing prerequisite: make — install GNU make and retry (sam build runs the Makefile)" >&2; exit 2; }
VENV="$ROOT/.tools/sam"
lock="$ROOT/infra/sam-requirements.lock"
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/sam" ] || [ "$(cat "$VENV/.lock.sha256" 2>/dev/null)" != "$want" ]; then
  echo "==> installing the SAM CLI and cfn-lint-serverless into .tools/sam" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$lock"
  echo "$want" > "$VENV/.lock.sha256"
fi
cd "$ROOT"
# No usage data leaves the machine.
export SAM_CLI_TELEMETRY=0
# `validate` and `build` need a region but no account: give them one when none is configured. Every other
# command (deploy, delete, logs) goes where your AWS profile says.
# The Makefile builds with cargo-lambda from .tools/venv.
if [ "${1:-}" = build ]; then "$ROOT/infra/local/stack.sh" install-build; fi
case "${1:-}" in
  validate | build) export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}" ;;
esac
exec "$VENV/bin/sam" "$@"
