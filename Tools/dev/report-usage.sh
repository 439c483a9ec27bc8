#!/usr/bin/env bash
# Reports usage to the marketplace-link that Tools/dev/run-local.sh runs, as the product's data
# plane would: RecordUsage over HTTP/2 with the "usage-reporter" credential from
# data/service-secrets.env. The organization's billing page then shows it (sent to the simulator
# once its hour is over and 5 minutes more).
#   Tools/dev/report-usage.sh ORGANIZATION_ID [DIMENSION] [QUANTITY]   # default compute_hours 1
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 ORGANIZATION_ID [DIMENSION] [QUANTITY]" >&2; exit 2; }
# shellcheck disable=SC1091
source data/service-secrets.env
[ -n "${USAGE_REPORTER_SECRET:-}" ] || { echo "no USAGE_REPORTER_SECRET in data/service-secrets.env: start Tools/dev/run-local.sh first" >&2; exit 1; }
body=$(printf '{"events":[{"idempotencyKey":"%s","organizationId":"%s","dimension":"%s","quantity":%s,"occurredAt":"%s"}]}' \
  "$(cat /proc/sys/kernel/random/uuid)" "$1" "${2:-compute_hours}" "${3:-1}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
curl -sS --http2-prior-knowledge -H 'content-type: application/json' \
  -H "x-service-credential: usage-reporter:$USAGE_REPORTER_SECRET" -d "$body" \
  http://127.0.0.1:7103/marketplacelink.v1.MarketplaceLinkService/RecordUsage
echo
