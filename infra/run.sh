#!/usr/bin/env bash
# The project's one run command (README "Run"): installs and starts the local stack, builds, seeds two
# orgs, serves the API on 127.0.0.1:${API_PORT:-3000} and the Lambda Invoke API on
# 127.0.0.1:${INVOKE_PORT:-3001}, writes .local/env.json and prints copy-paste curl examples.
# Ctrl-C stops everything it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
API_PORT="${API_PORT:-3000}"
INVOKE_PORT="${INVOKE_PORT:-3001}"
STATE="$ROOT/.local/stack"
ENV_FILE="$ROOT/.local/env.json"

for port in "$API_PORT" "$INVOKE_PORT"; do
  if python3 -c "import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(('127.0.0.1', $port)) else 1)"; then :; else
    echo "port $port is in use; set API_PORT / INVOKE_PORT to free ports" >&2; exit 2
  fi
done

infra/local/stack.sh install
echo "==> building the local gateway and the route functions" >&2
cargo build --quiet -p gateway

gateway_pid=""
cleanup() {
  trap - EXIT INT TERM
  set +e  # stop everything even if one step fails
  if [ -n "$gateway_pid" ]; then kill "$gateway_pid" 2>/dev/null; wait "$gateway_pid" 2>/dev/null; fi
  infra/local/stack.sh stop "$STATE"
  echo "stopped" >&2
}
trap cleanup EXIT INT TERM

rm -rf "$STATE" "$ENV_FILE"
infra/local/stack.sh start "$STATE" local
# shellcheck disable=SC1091
source "$STATE/stack.env"
# Local only: session tokens in .local/env.json are signed with this.
export SESSION_TOKEN_SECRET="${SESSION_TOKEN_SECRET:-local-development-session-secret-do-not-deploy}"

target/debug/local-gateway --seed --tick --env-file "$ENV_FILE" --api-port "$API_PORT" --invoke-port "$INVOKE_PORT" &
gateway_pid=$!
for _ in $(seq 1 150); do
  [ -f "$ENV_FILE" ] && python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $API_PORT)))" 2>/dev/null && break
  kill -0 "$gateway_pid" 2>/dev/null || { echo "the gateway exited; see the messages above" >&2; exit 1; }
  sleep 0.2
done

BASE="http://127.0.0.1:$API_PORT/api/public/v1"
read -r KEY TEAM < <(python3 -c "import json; o=json.load(open('$ENV_FILE'))['orgs'][0]; print(o['apiKeys']['admin'], o['teams'][0]['teamId'])")
DEADLINE=$(python3 -c "import datetime; print(datetime.date.today() + datetime.timedelta(days=30))")

cat <<MSG

Training assignments API is running.
  API base URL:        $BASE
  Lambda Invoke API:   http://127.0.0.1:$INVOKE_PORT/2015-03-31/functions/<LogicalId>/invocations
  Local stack details: $ENV_FILE   (orgs, API keys, users with session tokens, endpoints)

Try it (org "Acme Payments", admin API key):

  # 1. assign the SQL Injection topic to the Payments Platform team
  curl -s -X POST $BASE/assignments -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
    -d '{"contentArea":"practice","targetType":"topic","targetId":"sql-injection","assigneeType":"team","assigneeId":"$TEAM","deadline":"$DEADLINE","note":"PCI DSS 6.2.2"}'

  # 2. list the org's assignments, newest first: a JSON array (v1); -i shows the Link header to the next
  #    page and the X-RateLimit-* headers
  curl -si '$BASE/assignments?limit=2' -H 'Authorization: Bearer $KEY'

  # 3. detail with per-learner progress (takes the id of the newest assignment)
  ID=\$(curl -s '$BASE/assignments?limit=1' -H 'Authorization: Bearer $KEY' | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  curl -s $BASE/assignments/\$ID -H 'Authorization: Bearer $KEY'

  # 4. webhooks: point a receiver on this machine at the stack (the local stack alone may deliver to
  #    loopback, over plain HTTP too), e.g. one that prints each delivery and answers 204:
  #      python3 -c 'import http.server as h
  #      class R(h.BaseHTTPRequestHandler):
  #        def do_POST(s): print(dict(s.headers), s.rfile.read(int(s.headers["content-length"])).decode(), flush=True); s.send_response(204); s.end_headers()
  #      h.HTTPServer(("127.0.0.1", 8787), R).serve_forever()'
  #    then create an endpoint (its "secret" is shown once: verify deliveries with it, docs/webhooks.md)
  #    and repeat step 1: an assignment.created delivery arrives, signed.
  curl -s -X POST $BASE/webhook-endpoints -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
    -d '{"url":"http://127.0.0.1:8787/hooks","description":"my receiver","events":["assignment.created","assignment.completed","sarif.ingested"]}'

Press Ctrl-C to stop.
MSG
wait "$gateway_pid"
