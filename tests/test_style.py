"""The code style CI checks: ``ruff check`` and ``ruff format --check`` over the repository (the same
as the pre-commit hooks, ``.pre-commit-config.yaml``)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff(command):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install '.[test]'")
    r = subprocess.run(
        [ruff, *command, "src", "tests", "benchmarks", "docs"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
