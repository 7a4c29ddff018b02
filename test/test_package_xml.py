"""package.xml tells the truth: every import is declared under its rosdep key, nothing unused is.

rosdep installs what package.xml declares, so a missing key is a ROS user's ImportError and an
extra key an unneeded install. The keys below were checked against rosdistro's rosdep database
(rosdep/base.yaml, rosdep/python.yaml) and the Jazzy/Kilted distribution files.
"""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Python import name -> rosdep key (ROS packages are their own key).
IMPORT_KEYS = {
    "cv2": "python3-opencv", "numpy": "python3-numpy", "torch": "python3-torch", "yaml": "python3-yaml",
    "tqdm": "python3-tqdm", "matplotlib": "python3-matplotlib", "rosbags": "python3-rosbags-pip",
    "onnxruntime": "python3-onnxruntime-pip",
}
#: Imported, but with no rosdep key: documented as `pip install` in package.xml and the README.
PIP_ONLY = {"openvino", "nncf"}
#: Declared for what is not a Python import: the generated messages' runtime, a library preloaded.
NOT_IMPORTED = {"rosidl_default_runtime", "gperftools"}


def third_party_imports(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "ddrnet_ros"}


def runtime_sources() -> list[Path]:
    package = [p for p in (ROOT / "ddrnet_ros").rglob("*.py") if "msg" not in p.relative_to(ROOT).parts[1:2]]
    return [*package, *(ROOT / "launch").glob("*.py"), ROOT / "scripts" / "ddrnet-ros",
            ROOT / "scripts" / "segmentation_node"]


def declared(*tags: str) -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {element.text.strip() for tag in tags for element in root.iter(tag)}


def key_of(name: str) -> str:
    return IMPORT_KEYS.get(name, name)


def test_every_runtime_import_is_declared_with_its_rosdep_key():
    needed = {key_of(name) for name in third_party_imports(runtime_sources()) - PIP_ONLY}
    missing = needed - declared("depend", "exec_depend")
    assert not missing, f"imported but not in package.xml: {sorted(missing)}"


def test_every_declared_run_dependency_is_used():
    used = {key_of(name) for name in third_party_imports(runtime_sources())} | NOT_IMPORTED
    unused = declared("exec_depend") - used
    assert not unused, f"declared in package.xml but never imported: {sorted(unused)}"


def test_test_only_imports_are_test_dependencies():
    tests = [p for p in (ROOT / "test").rglob("*.py")]
    test_only = {"launch_pytest", "lifecycle_msgs"} & third_party_imports(tests)
    assert test_only <= declared("test_depend")


def test_the_import_scan_sees_optional_and_function_level_imports():
    names = third_party_imports(runtime_sources())
    assert {"vision_msgs", "onnxruntime", "openvino", "rosgraph_msgs", "launch_ros"} <= names
