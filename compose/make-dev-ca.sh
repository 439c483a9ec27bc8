#!/usr/bin/env bash
# A development CA and a certificate per service, for TLS between the services (and client
# certificates: each is good for both ends). Not for production: the CA key sits beside them.
#   compose/make-dev-ca.sh [DIR] [NAME...]
# DIR defaults to compose/secrets/tls; the names to the four services. Each certificate names
# the service (its compose host name), localhost and 127.0.0.1. Existing files are kept.
set -euo pipefail
dir=${1:-$(dirname "$0")/secrets/tls}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(identity organization marketplace-link console)
mkdir -p "$dir"
cd "$dir"
umask 077
if [ ! -s ca.pem ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj /CN=marketplace-dev-ca \
    -keyout ca.key -out ca.pem 2>/dev/null
fi
for name in "${names[@]}"; do
  [ -s "$name.pem" ] && continue
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$name" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
done
chgrp 10001 ./*.key ./*.pem 2>/dev/null || true
chmod 640 ./*.key ./*.pem
echo "CA and certificates for ${names[*]} in $dir"
