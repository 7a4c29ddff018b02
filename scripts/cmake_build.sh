#!/usr/bin/env bash
# scripts/cmake_build.sh SOURCE BUILD PREFIX [CMAKE_ARG...]
#
# Configure, build and install the package's CMakeLists.txt (messages, executables, share/) the
# way colcon would, with the ament and rosidl wheels of the repo's .venv standing in for a ROS 2
# install. setup.sh uses it for the venv build; a test uses it for the full, colcon-style install.
# SOURCE must not contain the venv: CMake refuses to export targets whose include dirs (numpy's
# headers, in the venv) lie inside the source tree. A previous install at PREFIX is replaced.
set -euo pipefail

die() { printf 'cmake_build: ERROR: %s\n' "$*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: $0 SOURCE BUILD PREFIX [CMAKE_ARG...]"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$ROOT/.venv
SOURCE=$1 BUILD=$2 PREFIX=$3
shift 3

[ -x "$VENV/bin/python" ] || die "no $VENV: run scripts/setup.sh first"
command -v cmake >/dev/null || die "cmake not found (apt-get install cmake)"
command -v c++ >/dev/null || die "no C++ compiler found (apt-get install build-essential)"
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)

mkdir -p "$BUILD"
log=$BUILD/build.log
: > "$log"
fail() { tail -40 "$log" >&2; die "$1 (full log: $log)"; }

# The library path the ROS wheels' bootstrapper would give (venv lib/ + ros_*.libs), set once
# here with its guard so that it does not re-exec every generator run; our own venv hook off.
ros_ld_path=$(env -u _ROS_WHEELS_BOOTSTRAP_COMPLETE DDRNET_ROS_ENV_HOOK=0 "$VENV/bin/python" \
    -c 'import os; print(os.environ["LD_LIBRARY_PATH"])')
build_env=(env AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" DDRNET_ROS_ENV_HOOK=0
           _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 LD_LIBRARY_PATH="$ros_ld_path" PYTHONDONTWRITEBYTECODE=1)

configure() {
    "${build_env[@]}" cmake -S "$SOURCE" -B "$BUILD" "${generator[@]}" \
        -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$VENV" \
        -DCMAKE_INSTALL_PREFIX="$PREFIX" \
        -DPython3_EXECUTABLE="$VENV/bin/python" \
        -DBUILD_TESTING=OFF "$@" >>"$log" 2>&1
}
# A build dir left by another venv or generator cannot be reused: start it afresh once.
configure "$@" || { find "$BUILD" -mindepth 1 -not -name build.log -delete; configure "$@"; } \
    || fail "cmake configure failed"
"${build_env[@]}" cmake --build "$BUILD" -j "${DDRNET_ROS_JOBS:-$(nproc)}" >>"$log" 2>&1 \
    || fail "build failed"
# No files of removed messages left behind (only a directory that is an ament install prefix).
if [ -d "$PREFIX/share/ament_index" ]; then rm -rf "$PREFIX"; fi
# From the build dir: ament's symlink install writes its manifest into the working directory.
(cd "$BUILD" && "${build_env[@]}" cmake --install .) >>"$log" 2>&1 || fail "install failed"
