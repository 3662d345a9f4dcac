"""The pre-commit hooks check and format a commit's Python files with the project's ruff."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

UNFORMATTED = "import os\nx = {'a':1}\n"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit works on a git repository")
def test_hooks_fix_lint_and_format_of_a_staged_file(tmp_path):
    for name in (".pre-commit-config.yaml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "bad.py").write_text(UNFORMATTED)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    run("git", "init", "-q")
    run("git", "add", ".")
    result = run("pre-commit", "run", "--files", "bad.py")
    assert result.returncode == 1, result.stdout + result.stderr  # files were changed
    assert "ruff check" in result.stdout and "ruff format" in result.stdout
    assert (tmp_path / "bad.py").read_text() == 'x = {"a": 1}\n'  # unused import gone, formatted
