#!/usr/bin/env bash
# scripts/setup.sh: make this checkout runnable without a ROS 2 install (`make setup` runs it).
#
#   1. .venv/              Python 3.11 venv: scripts/requirements.txt (torch CPU pin, the ROS 2
#                          Kilted wheels, the rosidl generators) + this package, editable
#   2. build/ros/install/  msg/ generated and compiled by the rosidl wheels through CMakeLists.txt
#                          (scripts/cmake_build.sh, DDRNET_ROS_VENV_BUILD=ON), with share/ddrnet_ros
#                          (package.xml, launch/, config/, as symlinks) and lib/ddrnet_ros/segmentation_node
#   3. env hook            .venv/.../site-packages/ddrnet_ros_env.pth: every .venv Python finds 2.
#                          (sys.path, LD_LIBRARY_PATH, AMENT_PREFIX_PATH) with nothing exported
#
# Idempotent: steps 1 and 2 keep a stamp holding a hash of their inputs and are skipped while it
# matches; a second run takes about a second. Knobs (env): PYTHON (a python3.11 to create the
# venv with), DDRNET_ROS_JOBS (compile jobs, default nproc), and for a second environment beside
# the first (`make test-compat`): DDRNET_ROS_VENV (default .venv), DDRNET_ROS_BUILD (default
# build/ros) and DDRNET_ROS_CONSTRAINTS (the pip constraints file, default scripts/constraints.txt).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$ROOT/${DDRNET_ROS_VENV:-.venv}
BUILD=$ROOT/${DDRNET_ROS_BUILD:-build/ros}
# The pins of every package (scripts/lock.sh, `make lock`, writes them from a working venv).
CONSTRAINTS=$ROOT/${DDRNET_ROS_CONSTRAINTS:-scripts/constraints.txt}
PREFIX=$BUILD/install
REQUIREMENTS=$ROOT/scripts/requirements.txt

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# Hash of files' names and contents (missing files hash as absent, so adding one changes it).
hash_files() { for f in "$@"; do echo "== ${f#"$ROOT"/}"; [ ! -f "$f" ] || cat "$f"; done | sha256sum | cut -c1-32; }
# The local pip indexes on some machines warn once per missing package dir: drop that noise.
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# Every venv Python started here runs with our hook switched off: the venv may be half-built,
# and the rosidl generators must not see a stale message install.
vpy() { DDRNET_ROS_ENV_HOOK=0 "$VENV/bin/python" "$@"; }

# One setup at a time per checkout (two `make test` started together must not both pip install).
mkdir -p "$ROOT/build"
exec 9>"$ROOT/build/.setup.lock"
flock -w 1800 9 || die "another scripts/setup.sh has held $ROOT/build/.setup.lock for 30 minutes"

# ---------------------------------------------------------------- 1. venv
find_base_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

deps_key=$(hash_files "$REQUIREMENTS" "$ROOT/setup.py" "$ROOT/pyproject.toml" "$CONSTRAINTS")
deps_stamp=$VENV/.ddrnet_ros-deps.stamp
if [ ! -x "$VENV/bin/python" ]; then
    base=$(find_base_python) || die "no Python 3.11 found (the ROS 2 Kilted wheels are cp311); set PYTHON=/path/to/python3.11"
    log "creating $VENV with $base"
    "$base" -m venv "$VENV"
fi
if [ "$(cat "$deps_stamp" 2>/dev/null)" != "$deps_key" ]; then
    log "installing Python dependencies (scripts/requirements.txt)"
    PIP=(vpy -m pip --disable-pip-version-check)
    quiet_pip "${PIP[@]}" install -q --upgrade pip || log "warning: could not upgrade pip; going on with $(vpy -m pip --version)"
    quiet_pip "${PIP[@]}" install -q -r "$REQUIREMENTS" -c "$CONSTRAINTS"
    # rosidl_parser's lark-parser 0.12 and lark>=1 share the `lark` directory: if lark>=1 ever
    # got in (by hand or as someone's dependency), remove it and restore lark-parser's files.
    if vpy -m pip show -q lark >/dev/null 2>&1; then
        log "removing lark>=1 (it overwrites lark-parser 0.12, which rosidl needs)"
        quiet_pip "${PIP[@]}" uninstall -q -y lark
        quiet_pip "${PIP[@]}" install -q --force-reinstall --no-deps "lark-parser==0.12.0"
    fi
    log "installing ddrnet_ros (editable)"
    quiet_pip "${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
    vpy -c 'import torch, rclpy, rosidl_parser.parser, lark, ddrnet_ros.commands' \
        || die "the venv's packages do not import (see above)"
    vpy -c 'import lark, sys; sys.exit(not lark.__version__.startswith("0.12"))' \
        || die "lark is not lark-parser 0.12 (rosidl_parser needs it)"

    # The wheels' exported CMake targets name the include dirs of the manylinux image that built
    # them (/opt/python/cp311-cp311/...): point them at this Python's and numpy's headers.
    py_include=$(vpy -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    np_include=$(vpy -c 'import numpy; print(numpy.get_include())')
    [ -f "$py_include/Python.h" ] || die "no Python.h in $py_include: install the Python 3.11 development headers"
    { grep -rlF '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib" --include='*.cmake' 2>/dev/null || true; } \
        | while read -r f; do
            sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_include#g" \
                   -e "s#/opt/python/cp311-cp311/include/python3.11#$py_include#g" "$f"
        done
    if left=$(grep -rlF '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib" --include='*.cmake' 2>/dev/null); then
        log "warning: CMake files still name /opt/python/cp311-cp311: $left"
    fi
    echo "$deps_key" > "$deps_stamp"
fi

# ---------------------------------------------------------------- 2. messages
# Keyed on what shapes the install: the interfaces, the build files, the wheel versions, and the
# names of the installed launch/config files (their contents are symlinked, edits need no rebuild).
msg_inputs=("$ROOT"/msg/*.msg "$ROOT/CMakeLists.txt" "$ROOT/package.xml" "$ROOT/scripts/segmentation_node"
            "$deps_stamp" "$ROOT/scripts/setup.sh" "$ROOT/scripts/cmake_build.sh")
share_listing=$(cd "$ROOT" && find launch config -type f -not -name '*.pyc' 2>/dev/null | LC_ALL=C sort)
msg_key=$( { hash_files "${msg_inputs[@]}"; echo "$share_listing"; echo "$VENV"; } | sha256sum | cut -c1-32)
msg_stamp=$BUILD/.stamp
# (The install links generated files in build/ros/build: both must exist.)
if [ "$(cat "$msg_stamp" 2>/dev/null)" != "$msg_key" ] || [ ! -d "$PREFIX" ] || [ ! -d "$BUILD/build" ]; then
    log "building the ROS 2 messages (msg/) into ${PREFIX#"$ROOT"/}"
    # CMake refuses to export a target whose include dirs lie inside the source tree, and numpy's
    # headers do (.venv/ is in the repo): configure from a tree of links to the real sources.
    mkdir -p "$BUILD/src"
    for item in CMakeLists.txt package.xml msg launch config scripts; do
        ln -sfn "$(realpath --relative-to="$BUILD/src" "$ROOT/$item")" "$BUILD/src/$item"
    done
    rm -f "$msg_stamp"
    "$ROOT/scripts/cmake_build.sh" "$BUILD/src" "$BUILD/build" "$PREFIX" \
        -DDDRNET_ROS_VENV_BUILD=ON -DAMENT_CMAKE_SYMLINK_INSTALL=ON
    echo "$msg_key" > "$msg_stamp"
fi

# ---------------------------------------------------------------- 3. env hook
site=$(vpy -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp "$ROOT/scripts/venv_env_hook.py" "$site/_ddrnet_ros_env.py.tmp"
mv "$site/_ddrnet_ros_env.py.tmp" "$site/_ddrnet_ros_env.py"
hook_line=$(printf 'import _ddrnet_ros_env; _ddrnet_ros_env.activate(%s, %s)' \
    "$(vpy -c 'import sys; print(repr(sys.argv[1]))' "$PREFIX")" \
    "$(vpy -c 'import sys; print(repr(sys.argv[1]))' "$ROOT")")
if [ "$(cat "$site/ddrnet_ros_env.pth" 2>/dev/null)" != "$hook_line" ]; then
    echo "$hook_line" > "$site/ddrnet_ros_env.pth.tmp"
    mv "$site/ddrnet_ros_env.pth.tmp" "$site/ddrnet_ros_env.pth"
fi

# ---------------------------------------------------------------- check
# A fresh interpreter with nothing exported: the messages import and serialize (which loads the
# fastrtps typesupport library through LD_LIBRARY_PATH), and ament finds the package.
env -u LD_LIBRARY_PATH -u AMENT_PREFIX_PATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u PYTHONPATH \
    "$VENV/bin/python" - <<'EOF' || die "the environment check failed (see above)"
from ament_index_python.packages import get_package_share_directory
from rclpy.serialization import deserialize_message, serialize_message

from ddrnet_ros.msg import ClassInfo, SegmentationInfo

msg = SegmentationInfo(model_variant="check", classes=[ClassInfo(id=1, name="road", r=128)])
assert deserialize_message(serialize_message(msg), SegmentationInfo) == msg
get_package_share_directory("ddrnet_ros")
EOF
log "ready: $VENV (messages in ${PREFIX#"$ROOT"/})"
