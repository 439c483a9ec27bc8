#!/usr/bin/env bash
# Runs the whole system locally: the console http://127.0.0.1:7100, identity :7101, organization
# :7102, marketplace-link :7103 and aws-marketplace-sim http://127.0.0.1:7199 (seeded from
# Tools/AWSMarketplaceSim/demo-seed.json), data under ./data/<service>/. Ctrl-C stops everything
# (each service drains, then exits). CONFIGURATION=debug skips the (long) release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
Tools/dev/install-packages.sh run
configuration=${CONFIGURATION:-release}
for product in identity organization marketplace-link console aws-marketplace-sim; do
  swift build -c "$configuration" --product "$product"
done
bin=$(swift build -c "$configuration" --show-bin-path)
mkdir -p data

# Each service gets a secret to present to the others; each trusts the others by its digest.
secrets=data/service-secrets.env
if [ ! -f "$secrets" ]; then
  umask 077
  for name in IDENTITY ORGANIZATION MARKETPLACE_LINK CONSOLE; do
    echo "${name}_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  done > "$secrets"
fi
# shellcheck disable=SC1090
source "$secrets"
digest() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
# A data/ from before the console had no CONSOLE_SECRET: add one.
if [ -z "${CONSOLE_SECRET:-}" ]; then
  CONSOLE_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "CONSOLE_SECRET=$CONSOLE_SECRET" >> "$secrets"
fi
# The product's data plane reports usage as "usage-reporter" (Tools/dev/report-usage.sh).
if [ -z "${USAGE_REPORTER_SECRET:-}" ]; then
  USAGE_REPORTER_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "USAGE_REPORTER_SECRET=$USAGE_REPORTER_SECRET" >> "$secrets"
fi
trusted_all="identity=$(digest "$IDENTITY_SECRET"),organization=$(digest "$ORGANIZATION_SECRET"),marketplace-link=$(digest "$MARKETPLACE_LINK_SECRET"),console=$(digest "$CONSOLE_SECRET"),usage-reporter=$(digest "$USAGE_REPORTER_SECRET")"

pids=()
stop() {
  trap - INT TERM
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
  exit 0
}
trap stop INT TERM

start() {  # name port secret
  # MAILDROP_DIR: identity writes its emails beside the simulator's, to data/maildrop/; their
  # links point at the console (PUBLIC_BASE_URL).
  SERVICE_SECRET="$3" TRUSTED_SERVICES="$trusted_all" MAILDROP_DIR=data/maildrop PUBLIC_BASE_URL=http://127.0.0.1:7100 \
    "$bin/$1" --port "$2" --data-dir "data/$1" &
  pids+=($!)
}
start identity 7101 "$IDENTITY_SECRET"
start organization 7102 "$ORGANIZATION_SECRET"
# marketplace-link signs its AWS Marketplace calls with the simulator's seller key (demo-seed.json),
# and trusts the simulator as the Amazon SNS host of its subscription events.
AWS_ACCESS_KEY_ID=AKIDLOCALSELLER000001 AWS_SECRET_ACCESS_KEY=local-simulator-seller-secret-not-for-aws \
  SNS_TRUSTED_ORIGINS=http://127.0.0.1:7199 METERED_DIMENSIONS=compute_hours,storage_gb_hours \
  start marketplace-link 7103 "$MARKETPLACE_LINK_SECRET"
start console 7100 "$CONSOLE_SECRET"
# "Set up your account" POSTs the buyer's browser to the console's fulfillment URL.
"$bin/aws-marketplace-sim" --port 7199 --fulfillment-url http://127.0.0.1:7100/marketplace/setup --data-dir data/aws-marketplace-sim \
  --seed Tools/AWSMarketplaceSim/demo-seed.json --maildrop-dir data/maildrop &
pids+=($!)
echo "walk the journey: open the 'Review offer' link in data/maildrop/offer-offer-demo-1.eml, sign in to the"
echo "simulator as buyer-admin, subscribe, click 'Set up your account'; emails from identity land in data/maildrop/"
echo "running; Ctrl-C stops everything"
wait
