"""The venv works with nothing exported: its console command and a fresh Python find everything.

scripts/setup.sh installs an env hook (.pth) into the venv; these tests start processes from a
foreign directory with every variable the hook provides removed from their environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOOK_VARIABLES = ("LD_LIBRARY_PATH", "AMENT_PREFIX_PATH", "PYTHONPATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")

PROBE = r"""
import json
from ament_index_python.packages import get_package_share_directory
from rclpy.serialization import deserialize_message, serialize_message
import ddrnet_ros, ddrnet_ros.msg
from ddrnet_ros.msg import ClassInfo, SegmentationInfo

msg = SegmentationInfo(model_variant="probe", classes=[ClassInfo(id=3, name="wall", r=102, g=102, b=156)])
print(json.dumps({
    "package": ddrnet_ros.__file__,
    "round_trip": deserialize_message(serialize_message(msg), SegmentationInfo) == msg,
    "share": get_package_share_directory("ddrnet_ros"),
}))
"""


def _bare_env(ros_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in ros_env.items() if k not in HOOK_VARIABLES}


def _probe(env: dict[str, str], cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_console_command_runs_from_any_directory_without_exports(ros_env, tmp_path):
    command = Path(sys.executable).parent / "ddrnet-ros"
    done = subprocess.run([str(command), "--help"], env=_bare_env(ros_env), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "make-bag" in done.stdout and "run" in done.stdout


def test_fresh_python_finds_sources_messages_and_share(ros_env, tmp_path):
    found = _probe(_bare_env(ros_env), tmp_path)
    assert found["package"] == str(REPO / "ddrnet_ros" / "__init__.py")  # the editable sources
    assert found["round_trip"] is True  # generated module and its typesupport libraries load
    share = Path(found["share"])
    assert (share / "package.xml").resolve() == (REPO / "package.xml").resolve()


def test_hook_restarts_python_once_the_ros_bootstrapper_has_run_without_our_libraries(ros_env, tmp_path):
    """A process started with the bootstrapper's guard already set (a tool's child, a build step)
    would not see the message libraries: the dynamic loader reads LD_LIBRARY_PATH only at start."""
    library_path = [p for p in os.environ["LD_LIBRARY_PATH"].split(os.pathsep)
                    if p and not p.startswith(str(REPO / "build"))]
    env = {**_bare_env(ros_env), "_ROS_WHEELS_BOOTSTRAP_COMPLETE": "1",
           "LD_LIBRARY_PATH": os.pathsep.join(library_path)}
    assert _probe(env, tmp_path)["round_trip"] is True
