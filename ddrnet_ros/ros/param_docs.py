"""Writes ``config/segmentation.yaml`` and the parameter table of ``docs/node.md`` from the node's
parameter table (:data:`ddrnet_ros.ros.params.PARAMETERS`), the one place defaults and
descriptions are written down.

    make params                                    # rewrite both files
    python -m ddrnet_ros.ros.param_docs            # the same
    python -m ddrnet_ros.ros.param_docs --check    # exit 1 naming the files that are out of date

The params file lists every parameter at its default with its description as comments; in
docs/node.md only the region between :data:`BEGIN` and :data:`END` is rewritten.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddrnet_ros.ros.params import PARAMETERS, ParamSpec, compressed_spec, topic_spec

#: The checkout this module lives in (the files are generated into it by default).
ROOT = Path(__file__).resolve().parents[2]
YAML_FILE = Path("config/segmentation.yaml")
DOCS_FILE = Path("docs/node.md")
BEGIN = "<!-- params:begin -->"
END = "<!-- params:end -->"
#: What to run after changing the table (named by the stale-file messages and the generated files).
COMMAND = "make params"
PARAMS_MODULE = "ddrnet_ros/ros/params.py"


@dataclass(frozen=True)
class BuiltinParameter:
    """A parameter rclpy declares on every node (not in PARAMETERS) that docs/node.md lists too."""

    name: str
    default: Any
    description: str
    allowed: str


#: rclpy's own parameters worth a row in the docs (their defaults are rclpy's; a test checks them).
ROS_BUILTINS: tuple[BuiltinParameter, ...] = (
    BuiltinParameter("use_sim_time", False, "Follow /clock (bag replay) instead of the system clock; "
                     "set by the launch file's use_sim_time argument.", "true or false"),
)

#: The placeholder camera name of the per-camera rows in the docs.
_ANY_CAMERA = "<name>"
_WIDTH = 100
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./:-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf"}


def camera_specs(name: str, compressed: bool = False) -> tuple[ParamSpec, ParamSpec]:
    """The per-camera parameters of camera ``name`` (topic, compressed), as the node declares them."""
    return topic_spec(name, compressed), compressed_spec(name)


def yaml_value(value: Any) -> str:
    """``value`` written the way a ROS params file reads it back as the same value and type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if not math.isfinite(value) or "e" in text or "." not in text:
            raise ValueError(f"cannot write the default {value!r} plainly in a params file")
        return text
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("an empty list has no ROS parameter type; give the default an element")
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    raise TypeError(f"no params-file form for {type(value).__name__} {value!r}")


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=_WIDTH, initial_indent=indent + "# ", subsequent_indent=indent + "# ",
                         break_on_hyphens=False, break_long_words=False)


def _entry(spec: ParamSpec, key: str, indent: str) -> list[str]:
    return [*_comment(spec.description, indent), *_comment(f"allowed: {spec.allowed}", indent),
            f"{indent}{key}: {yaml_value(spec.default)}"]


def render_yaml(specs: Sequence[ParamSpec] = PARAMETERS) -> str:
    """The whole params file: every parameter at its default, its description and allowed values as comments."""
    lines = [
        "# Parameters of the ddrnet_ros segmentation node at their defaults (a standard ROS 2 params file).",
        "# Read by `ros2 launch ddrnet_ros segmentation.launch.py` and by",
        "# `ddrnet-ros run --params-file config/segmentation.yaml`. docs/node.md describes every parameter.",
        f"# Generated from the table in {PARAMS_MODULE} by `{COMMAND}`: change defaults and",
        "# descriptions there, not here. (A copy of this file for your own setup is yours to edit.)",
        "/**:",
        "  ros__parameters:",
    ]
    indent = " " * 4
    for index, spec in enumerate(specs):
        if index:
            lines.append("")
        lines += _entry(spec, spec.name, indent)
    cameras: list[str] = next((spec.default for spec in specs if spec.name == "cameras"), [])
    if cameras:
        lines += ["", f"{indent}# Per camera: camera.<name>.topic and camera.<name>.compressed.", f"{indent}camera:"]
        for name in cameras:
            lines.append(f"{indent}  {name}:")
            for spec in camera_specs(name):
                lines += _entry(spec, spec.name.rsplit(".", 1)[1], indent + " " * 4)
    lines += [
        "",
        f"{indent}# Several cameras (outputs on segmentation/<name>/labels etc.):",
        f"{indent}# cameras: [front, rear]",
        f"{indent}# camera:",
        f"{indent}#   front: {{topic: front/image_raw, compressed: false}}",
        f"{indent}#   rear: {{topic: rear/image_raw/compressed, compressed: true}}",
    ]
    return "\n".join(lines) + "\n"


#: A word holding a <placeholder> (camera.<name>.topic), without a sentence's final full stop.
_PLACEHOLDER_TOKEN = re.compile(r"[\w./-]*<\w+>(?:[\w/<>-]|\.(?=[\w<]))*")


def _markdown(text: str) -> str:
    """Table-cell text: pipes escaped, words with a <placeholder> in code spans (else they read as HTML)."""
    text = re.sub(r"'(<\w+>)'", r"\1", text.replace("|", "\\|"))
    return _PLACEHOLDER_TOKEN.sub(lambda match: f"`{match.group(0)}`", text)


def _row(name: str, default: str, allowed: str, description: str) -> str:
    return f"| `{name}` | {default} | {_markdown(allowed)} | {_markdown(description)} |"


def render_docs_table(specs: Sequence[ParamSpec] = PARAMETERS) -> str:
    """The generated region of docs/node.md, markers included."""
    rows = [BEGIN,
            f"<!-- generated from {PARAMS_MODULE} by `{COMMAND}`; edit the table there, not here -->",
            "| parameter | default | allowed | description |",
            "| --- | --- | --- | --- |"]
    for spec in specs:
        description = spec.description + (f" {spec.doc}" if spec.doc else "")
        rows.append(_row(spec.name, f"`{yaml_value(spec.default)}`", spec.allowed, description))
    (topic, compressed), compressed_topic = camera_specs(_ANY_CAMERA), topic_spec(_ANY_CAMERA, True)
    rows.append(_row(topic.name, f"`{topic.default}` (`{compressed_topic.default}` when compressed)",
                     topic.allowed, topic.description))
    rows.append(_row(compressed.name, f"`{yaml_value(compressed.default)}`", compressed.allowed,
                     compressed.description))
    for builtin in ROS_BUILTINS:
        rows.append(_row(builtin.name, f"`{yaml_value(builtin.default)}`", builtin.allowed,
                         builtin.description + " Declared by rclpy on every node."))
    rows.append(END)
    return "\n".join(rows)


def render_docs(current: str, specs: Sequence[ParamSpec] = PARAMETERS) -> str:
    """``current`` (docs/node.md) with the region between the markers regenerated."""
    begin, end = current.find(BEGIN), current.find(END)
    if begin < 0 or end < begin or current.count(BEGIN) != 1 or current.count(END) != 1:
        raise ValueError(f"{DOCS_FILE} needs exactly one '{BEGIN}' followed by one '{END}' line")
    return current[:begin] + render_docs_table(specs) + current[end + len(END):]


def generated_files(root: Path = ROOT, specs: Sequence[ParamSpec] = PARAMETERS) -> dict[Path, str]:
    """Relative path -> the content the generator would write today."""
    return {YAML_FILE: render_yaml(specs), DOCS_FILE: render_docs((root / DOCS_FILE).read_text(), specs)}


def stale_files(root: Path = ROOT, specs: Sequence[ParamSpec] = PARAMETERS) -> list[Path]:
    """The generated files whose content differs from what the table gives today."""
    return [path for path, text in generated_files(root, specs).items()
            if not (root / path).is_file() or (root / path).read_text() != text]


def write_files(root: Path = ROOT, specs: Sequence[ParamSpec] = PARAMETERS) -> list[Path]:
    """Regenerate both files; returns those that changed."""
    changed = []
    for path, text in generated_files(root, specs).items():
        target = root / path
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddrnet_ros.ros.param_docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to write into (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.root)
        for path in stale:
            print(f"{path} is out of date with {PARAMS_MODULE}: run `{COMMAND}`", file=sys.stderr)
        return 1 if stale else 0
    for path in write_files(args.root):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
