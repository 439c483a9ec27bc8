#!/usr/bin/env bash
# Checks that the binaries in BIN_DIR need only what the runtime image has: no Swift runtime
# library (it is linked in statically), nothing missing, and every shared library from a Debian
# package named in compose/runtime-packages.txt or from the base image (libc6, libgcc-s1). Prints
# each binary's libraries with their packages. Runs on the build machine (Tools/dev/test-all.sh)
# and inside the runtime image (the Dockerfile), where every library must resolve.
#   compose/check-runtime.sh BIN_DIR [PACKAGE_LIST]
set -euo pipefail
bin_dir=$1
list=${2:-$(dirname "$0")/runtime-packages.txt}
allowed=" libc6 libgcc-s1 $(grep -v '^#' "$list" | tr '\n' ' ') "
failed=0
for binary in "$bin_dir"/*; do
  [ -x "$binary" ] || continue
  echo "== $(basename "$binary")"
  while read -r line; do
    case "$line" in
      *"not found"*) echo "  MISSING: $line"; failed=1; continue ;;
      *libswift*|*libFoundation*|*lib_Foundation*|*libdispatch*|*libBlocksRuntime*)
        echo "  SWIFT RUNTIME (should be static): $line"; failed=1; continue ;;
    esac
    path=$(echo "$line" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p')
    [ -n "$path" ] || continue   # the vDSO and the dynamic loader itself
    real=$(readlink -f "$path")
    package=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$real" 2>/dev/null || true)
    package=${package%%:*}
    if [[ "$allowed" == *" $package "* ]]; then
      echo "  $(basename "$path") ($package)"
    else
      echo "  NOT IN THE RUNTIME IMAGE: $(basename "$path") from '${package:-unknown}'"; failed=1
    fi
  done < <(ldd "$binary")
done
if [ $failed -ne 0 ]; then echo "runtime check: FAILED"; exit 1; fi
echo "runtime check: every library comes from the runtime image"
