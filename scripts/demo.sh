#!/usr/bin/env bash
# The README's "Try it": posts a sample deployment (lifecycle events and the
# Ansible run of its migrate step) and a failing one to a running collector.
# The samples carry fixed times, which the receiver refuses once they are
# more than five years old; cmd/fdsample moves them to the present first, so
# this works on any date.
#
#   scripts/demo.sh [RECEIVER_URL]     default http://127.0.0.1:8088
set -euo pipefail

receiver=${1:-http://127.0.0.1:8088}
root=$(cd "$(dirname "$0")/.." && pwd)
demo="$root/.cache/demo"
cd "$root"

go run ./cmd/fdsample -o "$demo" testdata/deployment-events.ndjson testdata/ansible-json_cb.ndjson
go run ./cmd/fdsample -o "$demo" testdata/deployment-failed.ndjson

set -x
curl -sS --fail-with-body -H 'Content-Type: application/x-ndjson' \
  --data-binary @"$demo/deployment-events.ndjson" \
  "$receiver/v1/deployments/events"
echo
# json_cb writes local time without a zone: say which zone (tz=UTC here,
# because the sample was written in UTC).
curl -sS --fail-with-body -H 'Content-Type: application/x-ndjson' \
  -H 'X-Fastdeploy-Deployment: 42' -H 'X-Fastdeploy-Step: migrate' \
  --data-binary @"$demo/ansible-json_cb.ndjson" \
  "$receiver/v1/ansible?tz=UTC"
echo
curl -sS --fail-with-body -H 'Content-Type: application/x-ndjson' \
  --data-binary @"$demo/deployment-failed.ndjson" \
  "$receiver/v1/deployments/events"
echo
