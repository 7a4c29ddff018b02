#!/usr/bin/env bash
# scripts/build_vision_msgs.sh [MIRROR] [OUT]
#
# vision_msgs is not on any package index here, so the node's optional vision_msgs/LabelInfo
# output cannot be exercised from the wheels alone. This builds the vision_msgs package from a
# git mirror of ros-perception/vision_msgs (ros2 branch; default ../.mirror/...) with the same
# wheel-based CMake build as our own messages, into OUT (default build/vision_msgs), and writes
# OUT/env.sh, which `make test-full` sources so that the LabelInfo tests run instead of skipping.
# Nothing of vision_msgs is copied into this repository.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIRROR=${1:-$ROOT/../.mirror/ros-perception+vision_msgs/repo}
OUT=${2:-$ROOT/build/vision_msgs}
die() { printf 'build_vision_msgs: ERROR: %s\n' "$*" >&2; exit 1; }
[ -d "$MIRROR" ] || die "no git mirror at $MIRROR (fetch github:ros-perception/vision_msgs first)"

commit=$(git -C "$MIRROR" rev-parse HEAD)
stamp=$OUT/stamp
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$commit" ] && [ -f "$OUT/env.sh" ]; then
    echo "vision_msgs $commit already built in $OUT"; exit 0
fi
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
# Only the message package's own tree: the mirror may lack blobs of other packages (rviz assets).
git -C "$MIRROR" archive "$commit:vision_msgs" | tar -x -C "$OUT/src"
"$ROOT/scripts/cmake_build.sh" "$OUT/src" "$OUT/build" "$OUT/install"
site=$(cd "$OUT/install/lib" && ls -d python3*/site-packages)
cat > "$OUT/env.sh" <<ENV
# vision_msgs $commit, built by scripts/build_vision_msgs.sh
export AMENT_PREFIX_PATH="$OUT/install\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}"
export LD_LIBRARY_PATH="$OUT/install/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PYTHONPATH="$OUT/install/lib/$site\${PYTHONPATH:+:\$PYTHONPATH}"
ENV
echo "$commit" > "$stamp"
echo "vision_msgs $commit built into $OUT (source $OUT/env.sh)"
