#!/usr/bin/env bash
# Builds the executables for the images: release, with the Swift standard library and Foundation
# linked in statically (--static-swift-stdlib), so the runtime image needs only the few Debian
# libraries in compose/runtime-packages.txt. The Dockerfile's build stage runs this; so does
# Tools/dev/test-all.sh, which then checks the binaries with compose/check-runtime.sh.
#   compose/build-release.sh [OUT_DIR] [PRODUCT...]   default: .build/compose-bin, all five
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/compose-bin}
shift || true
products=("$@")
[ ${#products[@]} -gt 0 ] || products=(identity organization marketplace-link console aws-marketplace-sim)
mkdir -p "$out"
for product in "${products[@]}"; do
  swift build -c release --static-swift-stdlib --product "$product"
done
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
for product in "${products[@]}"; do
  install -m 0755 "$bin/$product" "$out/$product"
done
echo "built ${products[*]} into $out"
