"""The ROS-free core imports with every ROS module forbidden.

Core = every module of the package outside the ROS layer, found on disk, so a new module is
checked the day it is added. Each import runs in a fresh interpreter whose import system refuses
rclpy, message packages and the ROS layer, and records the attempt even if the module catches the
ImportError.
"""

from __future__ import annotations

import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "ddrnet_ros"
#: Modules allowed to use ROS: the adapters, the generated messages, and the commands that run,
#: play into or drive the node.
ROS_LAYER = ("ddrnet_ros.ros", "ddrnet_ros.msg", "ddrnet_ros.commands.run", "ddrnet_ros.commands.play",
             "ddrnet_ros.commands.evaluate_live", "ddrnet_ros.commands.demo", "ddrnet_ros.__main__")

IMPORT_WITHOUT_ROS = r"""
import importlib, importlib.abc, json, sys

attempts = []

def _is_ros(name):
    top = name.split(".")[0]
    return (top in ("rclpy", "rosidl_runtime_py", "rpyutils") or top.endswith(("_msgs", "_interfaces"))
            or name == "ddrnet_ros.msg" or name.startswith(("ddrnet_ros.msg.", "ddrnet_ros.ros")))

class ForbidRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if _is_ros(name):
            attempts.append(name)
            raise ImportError(f"ROS module {name!r} imported by the core")
        return None

sys.meta_path.insert(0, ForbidRos())
report = {}
for module in sys.argv[1:]:
    before = len(attempts)
    try:
        importlib.import_module(module)
    except Exception as exc:
        report[module] = f"{type(exc).__name__}: {exc}"
    else:
        if len(attempts) > before:
            report[module] = f"tried to import {attempts[before:]}"
print(json.dumps(report))
"""


def _core_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == layer or name.startswith(layer + ".") for layer in ROS_LAYER):
            names.append(name)
    return names


def test_core_modules_import_without_rclpy(run_python):
    modules = _core_modules()
    assert {"ddrnet_ros", "ddrnet_ros.model", "ddrnet_ros.classes", "ddrnet_ros.commands"} <= set(modules)
    done = run_python(IMPORT_WITHOUT_ROS, *modules, timeout=300)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


def test_the_import_guard_catches_rclpy_even_when_the_module_catches_the_error(run_python, ros_env, tmp_path):
    (tmp_path / "optional_ros.py").write_text("try:\n    import rclpy\nexcept ImportError:\n    rclpy = None\n")
    env = {**ros_env, "PYTHONPATH": str(tmp_path)}
    done = run_python(IMPORT_WITHOUT_ROS, "optional_ros", "ddrnet_ros.classes", env=env)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"optional_ros": "tried to import ['rclpy']"}
