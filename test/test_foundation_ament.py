"""The package's ament resources are installed where ament_index_python and launch_ros look."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from ament_index_python.packages import (
    get_package_prefix,
    get_package_share_directory,
    get_packages_with_prefixes,
)
from ament_index_python.resources import get_resource
from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "ddrnet_ros"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_package_marker_is_in_the_ament_index():
    _content, prefix = get_resource("packages", PACKAGE)
    assert get_packages_with_prefixes()[PACKAGE] == prefix
    assert get_package_prefix(PACKAGE) == prefix
    assert Path(get_package_share_directory(PACKAGE)) == Path(prefix) / "share" / PACKAGE


def test_share_holds_launch_and_config_files_as_in_the_repo():
    share = Path(get_package_share_directory(PACKAGE))
    for folder in ("launch", "config"):
        source = _files(REPO / folder)
        assert source, f"{folder}/ has no files to install"
        assert _files(share / folder) == source, f"share/{PACKAGE}/{folder} differs from {folder}/"


def test_installed_package_xml_is_a_valid_format_3_manifest():
    share = Path(get_package_share_directory(PACKAGE))
    assert (share / "package.xml").read_bytes() == (REPO / "package.xml").read_bytes()
    package = parse_package(str(share))
    package.validate()  # raises on a bad name, version, maintainer e-mail, ...
    assert (package.name, package.package_format) == (PACKAGE, 3)
    assert all(m.email for m in package.maintainers)
    exec_depends = {d.name for d in package.exec_depends}
    assert {"rclpy", "sensor_msgs", "std_msgs", "rosidl_default_runtime", "launch_ros"} <= exec_depends
    assert "rosidl_interface_packages" in {g.name for g in package.member_of_groups}


def test_node_executable_is_where_launch_ros_finds_it():
    """launch_ros' Node(package=..., executable=...) runs <prefix>/lib/<package>/<executable>."""
    executable = Path(get_package_prefix(PACKAGE)) / "lib" / PACKAGE / "segmentation_node"
    assert executable.is_file() and os.access(executable, os.X_OK)
    assert executable.read_text().startswith("#!/usr/bin/env python3\n")
    # It calls ddrnet_ros.ros.node.main_ros: that function must exist under that name.
    calls = {n.func.id for n in ast.walk(ast.parse(executable.read_text()))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "main_ros" in calls
    node_module = ast.parse((REPO / PACKAGE / "ros" / "node.py").read_text())
    assert "main_ros" in {n.name for n in node_module.body if isinstance(n, ast.FunctionDef)}
