"""The node's parameter table (ddrnet_ros/ros/params.py) is the one source of defaults and
descriptions: config/segmentation.yaml and the table in docs/node.md are what the generator
(ddrnet_ros/ros/param_docs.py, `make params`) writes from it, and the params file, read by the
node itself, gives exactly the table's defaults.
"""

from __future__ import annotations

import array
import dataclasses
import difflib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from ddrnet_ros.ros import param_docs
from ddrnet_ros.ros.params import PARAMETERS, read_settings

ROOT = Path(__file__).resolve().parents[2]
FIX = f"run `{param_docs.COMMAND}` (or .venv/bin/python -m ddrnet_ros.ros.param_docs) and commit the result"


def _difference(path: Path, expected: str) -> str:
    actual = (ROOT / path).read_text()
    diff = difflib.unified_diff(actual.splitlines(), expected.splitlines(), f"{path} (now)",
                                f"{path} (from {param_docs.PARAMS_MODULE})", lineterm="", n=1)
    return "\n".join(list(diff)[:40])


@pytest.mark.parametrize("path", [param_docs.YAML_FILE, param_docs.DOCS_FILE], ids=str)
def test_the_file_is_what_the_generator_writes_from_the_parameter_table(path: Path):
    expected = param_docs.generated_files(ROOT)[path]
    if (ROOT / path).read_text() != expected:
        pytest.fail(f"{path} is out of date with the parameter table in {param_docs.PARAMS_MODULE}: {FIX}\n"
                    + _difference(path, expected), pytrace=False)


def test_changing_a_default_in_the_table_makes_both_files_out_of_date():
    changed = tuple(dataclasses.replace(spec, default=0.25) if spec.name == "overlay_alpha" else spec
                    for spec in PARAMETERS)
    assert param_docs.stale_files(ROOT, changed) == [param_docs.YAML_FILE, param_docs.DOCS_FILE]
    assert "    overlay_alpha: 0.25\n" in param_docs.render_yaml(changed)
    assert "| `overlay_alpha` | `0.25` |" in param_docs.render_docs_table(changed)


def test_check_names_the_stale_file_and_the_command_and_regenerating_fixes_it(tmp_path: Path, capsys):
    for path in (param_docs.YAML_FILE, param_docs.DOCS_FILE):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    yaml_file = tmp_path / param_docs.YAML_FILE
    yaml_file.write_text(yaml_file.read_text().replace("overlay_alpha: 0.5", "overlay_alpha: 0.7"))

    assert param_docs.main(["--check", "--root", str(tmp_path)]) == 1
    message = capsys.readouterr().err
    assert str(param_docs.YAML_FILE) in message and f"run `{param_docs.COMMAND}`" in message
    assert str(param_docs.DOCS_FILE) not in message

    assert param_docs.main(["--root", str(tmp_path)]) == 0
    assert param_docs.main(["--check", "--root", str(tmp_path)]) == 0
    assert "overlay_alpha: 0.5\n" in yaml_file.read_text()


def test_the_docs_region_outside_the_markers_is_left_as_written():
    current = (ROOT / param_docs.DOCS_FILE).read_text()
    edited = current.replace("## Several cameras", "## Several cameras (edited)")
    regenerated = param_docs.render_docs(edited)
    assert "## Several cameras (edited)" in regenerated
    assert regenerated.count(param_docs.BEGIN) == 1 and regenerated.count(param_docs.END) == 1


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _table_defaults() -> dict[str, Any]:
    """Every parameter the node declares with the shipped defaults, per-camera ones included."""
    defaults = {spec.name: spec.default for spec in PARAMETERS}
    cameras = defaults["cameras"]
    for name in cameras:
        defaults.update({spec.name: spec.default for spec in param_docs.camera_specs(name)})
    return defaults


def test_the_params_file_sets_every_declared_parameter_and_nothing_else():
    # ROS ignores a params-file entry no node declares, so a misspelt name would go unnoticed.
    data = yaml.safe_load((ROOT / param_docs.YAML_FILE).read_text())
    assert list(data) == ["/**"] and list(data["/**"]) == ["ros__parameters"]
    assert sorted(_flatten(data["/**"]["ros__parameters"])) == sorted(_table_defaults())


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, array.array)) else value


def _node(context, name: str, *cli_args: str):
    from ddrnet_ros.ros.node import SegmentationNode

    return SegmentationNode(name, context=context, cli_args=list(cli_args) or None, use_global_arguments=False)


def test_loading_the_params_file_through_the_node_gives_exactly_the_table_defaults(rclpy_context):
    from_file = _node(rclpy_context, "from_file", "--ros-args", "--params-file", str(ROOT / param_docs.YAML_FILE))
    bare = _node(rclpy_context, "bare")
    try:
        settings = read_settings(from_file)  # declares the per-camera parameters too
        for name, default in _table_defaults().items():
            value = _plain(from_file.get_parameter(name).value)
            assert value == default, f"{name}: the params file gives {value!r}, the table {default!r}"
            assert type(value) is type(default), f"{name}: {type(value).__name__}, table {type(default).__name__}"
            if isinstance(default, list):
                assert [type(v) for v in value] == [type(v) for v in default], name
        assert settings == read_settings(bare)
    finally:
        from_file.destroy_node()
        bare.destroy_node()


def test_the_docs_rows_of_rclpy_parameters_state_rclpy_defaults(rclpy_context):
    node = _node(rclpy_context, "builtins")
    try:
        for builtin in param_docs.ROS_BUILTINS:
            assert node.get_parameter(builtin.name).value == builtin.default, builtin.name
    finally:
        node.destroy_node()


def test_every_default_is_written_in_a_form_a_params_file_reads_back_unchanged():
    for name, default in _table_defaults().items():
        text = param_docs.yaml_value(default)
        assert yaml.safe_load(f"{name}: {text}") == {name: default}, name
