"""The repository stays lint-clean and the package type-checks (pyproject.toml's [tool.ruff], [tool.mypy]).

Both tools run as ``python -m <tool>`` with this interpreter, from the repository root, so that
they read the project's own configuration; a failure shows the tool's report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: A cold mypy run (no .mypy_cache) takes about half a minute; leave room for a loaded machine.
MYPY_TIMEOUT_S = 600


def run_tool(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def test_the_code_is_ruff_clean() -> None:
    pytest.importorskip("ruff", reason="ruff is not installed (scripts/requirements.txt, lint group)")
    result = run_tool(["ruff", "check", "."], timeout_s=120)
    assert result.returncode == 0, f"ruff check . found problems:\n{result.stdout}{result.stderr}"


@pytest.mark.timeout(MYPY_TIMEOUT_S + 60)
def test_the_package_type_checks() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (scripts/requirements.txt, lint group)")
    import numpy as np

    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip("types are checked against the stubs of the pinned set (NumPy 2, OpenCV 5) by make test; "
                    f"this is NumPy {np.__version__} (make test-compat)")
    result = run_tool(["mypy"], timeout_s=MYPY_TIMEOUT_S)
    assert result.returncode == 0, f"mypy found type errors:\n{result.stdout}{result.stderr}"
