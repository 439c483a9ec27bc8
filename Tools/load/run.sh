#!/usr/bin/env bash
# The load and fault suite against this tree's release builds (the images' static binaries,
# compose/build-release.sh, shared with Tools/dev/test-all.sh): installs what it needs, builds,
# then runs Tools/load/run.py with the arguments given.
#   Tools/load/run.sh --seconds 600 --rate 3                            # SQLite, faults on
#   Tools/load/run.sh --backend postgres --replicas 2 --seconds 600 --rate 3
#   Tools/load/run.sh --seconds 30 --no-faults --soak 600               # the soak
set -euo pipefail
cd "$(dirname "$0")/../.."
Tools/dev/install-packages.sh test >/dev/null
compose/build-release.sh .build/compose-bin >/dev/null
exec python3 -u Tools/load/run.py --bin .build/compose-bin "$@"
