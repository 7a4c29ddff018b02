"""CPU tests name their device: with CUDA visible, ``device="auto"`` would move them to the GPU.

There they would multiply CPU constants by CUDA tensors, call ``.numpy()`` on CUDA tensors and
demand CPU-exact results from a GPU; the GPU path is tested on purpose, in
test/engine/test_cuda.py. This scan reads every test file's syntax (so a new file is checked the
day it is added) and fails for a ``SegmenterConfig(...)`` whose device cannot be seen in the call:
a ``device=`` keyword, the fourth positional argument, or a ``**{...}`` literal with a "device" key.
"""

from __future__ import annotations

import ast
from pathlib import Path

TEST_DIR = Path(__file__).resolve().parent
REPO = TEST_DIR.parent

#: (file relative to the repository, enclosing function) -> why it may build a config without a
#: visible device (e.g. the device arrives in a ``**kwargs`` the scan cannot read). Keep it short.
ALLOWED: dict[tuple[str, str], str] = {}


def _callee(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def names_device(call: ast.Call) -> bool:
    """Whether the call visibly sets ``device`` (device is SegmenterConfig's fourth field)."""
    if len(call.args) >= 4 or any(keyword.arg == "device" for keyword in call.keywords):
        return True
    splats = [keyword.value for keyword in call.keywords if keyword.arg is None]
    return any(isinstance(splat, ast.Dict) and any(isinstance(key, ast.Constant) and key.value == "device"
                                                     for key in splat.keys)
               for splat in splats)


class _ConfigCalls(ast.NodeVisitor):
    """Every ``SegmenterConfig(...)`` without a visible device, with its enclosing function."""

    def __init__(self) -> None:
        self.scope = ["<module>"]
        self.found: list[tuple[str, int]] = []

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Call(self, node: ast.Call) -> None:
        if _callee(node) == "SegmenterConfig" and not names_device(node):
            self.found.append((self.scope[-1], node.lineno))
        self.generic_visit(node)


def unpinned(source: str, filename: str = "<test>") -> list[tuple[str, int]]:
    """(enclosing function, line) of each SegmenterConfig call in ``source`` without a visible device."""
    calls = _ConfigCalls()
    calls.visit(ast.parse(source, filename))
    return calls.found


def unpinned_in_tests() -> dict[tuple[str, str], list[int]]:
    """(file, function) -> lines, over every Python file under test/."""
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted(TEST_DIR.rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        for function, line in unpinned(path.read_text(), str(path)):
            found.setdefault((relative, function), []).append(line)
    return found


def test_every_segmenter_config_in_the_tests_names_its_device():
    offenders = {key: lines for key, lines in unpinned_in_tests().items() if key not in ALLOWED}
    report = "; ".join(f"{path}:{lines[0]} ({function})" for (path, function), lines in sorted(offenders.items()))
    assert not offenders, f"SegmenterConfig without device=... (add device='cpu'): {report}"


def test_every_allow_list_entry_is_still_needed():
    stale = set(ALLOWED) - set(unpinned_in_tests())
    assert not stale, f"remove these from ALLOWED, they name their device now: {sorted(stale)}"


def test_the_scan_sees_what_a_test_may_write():
    assert unpinned("SegmenterConfig(checkpoint='random')") == [("<module>", 1)]
    assert unpinned("def test_x():\n    engine.SegmenterConfig()\n") == [("test_x", 2)]
    assert unpinned("SegmenterConfig(**changes)") == [("<module>", 1)]
    assert unpinned("SegmenterConfig(**{'checkpoint': 'random'}, **changes)") == [("<module>", 1)]
    for pinned in ("SegmenterConfig(device='cpu')", "SegmenterConfig('ddrnet23_slim', 'random', None, 'cpu')",
                   "SegmenterConfig(**{'checkpoint': 'random', 'device': 'cpu', **changes})",
                   "SegmenterConfig(checkpoint='random', device='auto')"):  # auto on purpose: visible
        assert unpinned(pinned) == [], pinned


def test_the_ros_harness_puts_nodes_on_the_cpu_unless_told_otherwise():
    """Nodes built by the ROS tests' harness default to device cpu (test/ros/conftest.py)."""
    tree = ast.parse((TEST_DIR / "ros" / "conftest.py").read_text())
    defaults = [call for call in ast.walk(tree) if isinstance(call, ast.Call) and _callee(call) == "setdefault"
                and [a.value for a in call.args if isinstance(a, ast.Constant)] == ["device", "cpu"]]
    assert defaults, "the ROS harness no longer defaults device to cpu"
