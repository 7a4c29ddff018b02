"""CMakeLists.txt's full install (what colcon does on a ROS 2 machine) gives a working package.

The sources are built with scripts/cmake_build.sh into a temporary prefix, without the venv
build's shortcuts (no editable sources, no symlinks), then used from a Python that knows only
that prefix, the way `source install/setup.bash` would set it up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("CMakeLists.txt", "package.xml", "msg", "launch", "config", "scripts", "ddrnet_ros")

PROBE = r"""
import json
from ament_index_python.packages import get_package_prefix, get_package_share_directory
from rclpy.serialization import deserialize_message, serialize_message
import ddrnet_ros, ddrnet_ros.classes
from ddrnet_ros.msg import ClassInfo, SegmentationInfo

msg = SegmentationInfo(model_variant="installed", classes=[ClassInfo(id=0, name="road", r=128, g=64, b=128)])
print(json.dumps({
    "package": ddrnet_ros.__file__,
    "classes": ddrnet_ros.classes.__file__,
    "round_trip": deserialize_message(serialize_message(msg), SegmentationInfo) == msg,
    "prefix": get_package_prefix("ddrnet_ros"),
    "share": get_package_share_directory("ddrnet_ros"),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colcon_style")
    source = root / "src" / "ddrnet_ros"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    prefix = root / "install"
    done = subprocess.run([str(REPO / "scripts" / "cmake_build.sh"), str(source), str(root / "build"), str(prefix)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return prefix


def _installed_env(prefix: Path, ros_env: dict[str, str]) -> dict[str, str]:
    """What the package's local_setup would export, with the venv's own hook switched off."""
    site = prefix / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    env = {k: v for k, v in ros_env.items() if k not in ("LD_LIBRARY_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")}
    env.update(DDRNET_ROS_ENV_HOOK="0", PYTHONPATH=str(site), LD_LIBRARY_PATH=str(prefix / "lib"),
               AMENT_PREFIX_PATH=os.pathsep.join([str(prefix), sys.prefix]))
    return env


def test_full_install_has_sources_messages_and_resources_in_one_package(installed, ros_env, tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE], env=_installed_env(installed, ros_env), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    site = installed / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    # our __init__.py, not rosidl's empty one, and the core next to the generated messages
    assert found["package"] == str(site / "ddrnet_ros" / "__init__.py")
    assert (site / "ddrnet_ros" / "__init__.py").read_text() == (REPO / "ddrnet_ros" / "__init__.py").read_text()
    assert found["classes"] == str(site / "ddrnet_ros" / "classes.py")
    profile = "ddrnet_ros/ros/fastdds_large_images.xml"  # the node loads it; README hands it to camera drivers
    assert (site / profile).read_bytes() == (REPO / profile).read_bytes()
    assert found["round_trip"] is True
    assert found["prefix"] == str(installed)
    share = Path(found["share"])
    for name in ("package.xml", "launch/segmentation.launch.py", "config/segmentation.yaml"):
        assert (share / name).read_bytes() == (REPO / name).read_bytes(), name


def test_full_install_has_the_node_executable_and_the_cli(installed, ros_env, tmp_path):
    node = installed / "lib" / "ddrnet_ros" / "segmentation_node"
    assert node.is_file() and os.access(node, os.X_OK)
    cli = installed / "bin" / "ddrnet-ros"
    assert cli.is_file() and os.access(cli, os.X_OK)
    done = subprocess.run([sys.executable, str(cli), "--help"], env=_installed_env(installed, ros_env),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "evaluate" in done.stdout
