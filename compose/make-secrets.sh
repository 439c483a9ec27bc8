#!/usr/bin/env bash
# Makes the secrets compose.yaml hands to the services, once: a random secret per service in
# compose/secrets/ (mode 600, ignored by git), the AWS stand-in's seller key, and compose/.env with
# TRUSTED_SERVICES, the secrets' SHA-256 digests (not secret), which every service uses to trust
# the others. Run again, it keeps what exists.
#   compose/make-secrets.sh [DIR]   default: compose/ (DIR/secrets/ and DIR/.env)
set -euo pipefail
dir=${1:-$(dirname "$0")}
mkdir -p "$dir/secrets"
chmod 700 "$dir/secrets"
umask 077
for name in identity organization marketplace_link console; do
  [ -s "$dir/secrets/${name}_secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/secrets/${name}_secret"
done
# The simulator's seller key (Tools/AWSMarketplaceSim/demo-seed.json): for the stand-in only.
[ -s "$dir/secrets/aws_secret_access_key" ] || printf 'local-simulator-seller-secret-not-for-aws' > "$dir/secrets/aws_secret_access_key"
# Compose mounts a file secret as it is on the host: readable by its owner and by group 10001,
# the services' group in the images, and by nobody else.
chgrp 10001 "$dir"/secrets/* 2>/dev/null || true
chmod 640 "$dir"/secrets/*
digest() { sha256sum < "$dir/secrets/$1" | cut -d' ' -f1; }
umask 022
printf 'TRUSTED_SERVICES=identity=%s,organization=%s,marketplace-link=%s,console=%s\n' \
  "$(digest identity_secret)" "$(digest organization_secret)" "$(digest marketplace_link_secret)" "$(digest console_secret)" > "$dir/.env"
echo "secrets in $dir/secrets/, digests in $dir/.env"
