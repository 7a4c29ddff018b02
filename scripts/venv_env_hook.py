"""Environment hook: every Python process of the repo's .venv finds the ddrnet_ros message build.

scripts/setup.sh copies this file into the venv's site-packages as ``_ddrnet_ros_env.py`` and
writes ``ddrnet_ros_env.pth`` next to it, which calls :func:`activate` at interpreter start-up.
That .pth sorts before ``ros_wheels_bootstrapper.pth``, which re-executes Python once with
LD_LIBRARY_PATH extended by the venv's lib/; rosidl looks up a message's typesupport libraries
through LD_LIBRARY_PATH at run time, so the message build's lib/ must already be in the
environment when that re-exec happens. Without it users would have to export three variables
before ``.venv/bin/ddrnet-ros`` or ``.venv/bin/python -m pytest`` worked.

Set DDRNET_ROS_ENV_HOOK=0 to switch it off (the message build itself does, so that the rosidl
generators never see a half-written install).
"""

from __future__ import annotations

import os
import sys

#: set in the environment of the one re-exec this hook may do itself (loop guard)
_REEXEC_GUARD = "_DDRNET_ROS_ENV_REEXEC"


def _prepend_env(name: str, value: str) -> bool:
    """Put ``value`` first on the path-list variable ``name``; False if it was already there."""
    parts = [p for p in os.environ.get(name, "").split(os.pathsep) if p]
    if value in parts:
        return False
    os.environ[name] = os.pathsep.join([value, *parts])
    return True


def activate(prefix: str, source_root: str) -> None:
    """Expose the message install at ``prefix`` and keep the sources at ``source_root`` first.

    The generated ``ddrnet_ros/`` in the install has an empty ``__init__.py``; the real package
    (whose ``__init__`` extends ``__path__`` over every ``ddrnet_ros/`` on sys.path) must be
    found before it, so the install's site-packages goes right after the source root.
    """
    restarted = os.environ.pop(_REEXEC_GUARD, None) is not None  # children must not inherit it
    if os.environ.get("DDRNET_ROS_ENV_HOOK") == "0" or not os.path.isdir(prefix):
        return
    lib = os.path.join(prefix, "lib")
    site = os.path.join(lib, f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    if source_root not in sys.path:
        sys.path.append(source_root)
    if site not in sys.path:
        sys.path.insert(sys.path.index(source_root) + 1, site)

    # ament_index_python: our package's share/ first, then the ROS wheels' own index (std_msgs...).
    _prepend_env("AMENT_PREFIX_PATH", sys.prefix)
    _prepend_env("AMENT_PREFIX_PATH", prefix)

    if _prepend_env("LD_LIBRARY_PATH", lib) and os.environ.get("_ROS_WHEELS_BOOTSTRAP_COMPLETE"):
        # The bootstrapper will not re-exec (it already did, or was told not to), and the dynamic
        # loader only reads LD_LIBRARY_PATH at start-up: restart once so that it sees lib/.
        if not restarted:
            os.environ[_REEXEC_GUARD] = "1"
            try:
                os.execv(sys.executable, sys.orig_argv)
            except OSError as exc:  # keep the interpreter usable; messages may fail to load
                os.environ.pop(_REEXEC_GUARD, None)
                sys.stderr.write(f"ddrnet_ros env hook: could not restart Python: {exc}\n")
