"""tests/launch.py: a script run from the warm fork is what a fresh interpreter would run."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import launch

SCRIPT = """
import json, os, sys
print(json.dumps([sys.argv, os.getcwd(), os.environ.get("HEADLAB_PROBE"), sys.path[0],
                  __name__, "lightning" in sys.modules]))
print("to stderr", file=sys.stderr)
if sys.argv[1] == "raise":
    raise ValueError("boom")
if sys.argv[1] == "wait":
    open("started", "w").close()
    import time
    time.sleep(60)
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["3", "raise"])
def test_a_warm_run_prints_and_exits_as_a_fresh_interpreter(tmp_path, how):
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "HEADLAB_PROBE": "yes"}
    args = [sys.executable, str(script), how]
    fresh = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    warm = launch.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert launch.warm_argv(args) == args[1:]  # the second really ran warm
    assert warm.returncode == fresh.returncode == (3 if how == "3" else 1)
    # the same argv, folder, environment, sys.path[0] and __name__; Lightning preloaded
    assert warm.stdout.replace("true]", "false]") == fresh.stdout
    assert warm.stderr.splitlines()[0] == fresh.stderr.splitlines()[0] == "to stderr"
    assert warm.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1]  # the same error


@pytest.mark.slow
def test_sigint_ends_a_warm_run_as_it_ends_a_fresh_one(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    codes = []
    # pytest started in the background by a shell ignores SIGINT, and children inherit that
    fresh = functools.partial(
        subprocess.Popen, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    )
    for start in (fresh, launch.Popen):
        (tmp_path / "started").unlink(missing_ok=True)
        process = start([sys.executable, str(script), "wait"], cwd=tmp_path, stdout=launch.DEVNULL)
        while not (tmp_path / "started").exists():
            assert process.poll() is None
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        codes.append(process.wait(timeout=30))
    assert codes == [-signal.SIGINT, -signal.SIGINT]  # KeyboardInterrupt left uncaught


def test_anything_but_a_script_or_module_runs_in_a_new_interpreter(monkeypatch):
    python = sys.executable
    assert launch.warm_argv([python, "scripts/train.py", "-m"]) == ["scripts/train.py", "-m"]
    assert launch.warm_argv([python, "-m", "tensorboard.main"]) == ["-m", "tensorboard.main"]
    assert launch.warm_argv([python, "-c", "print(1)"]) is None
    assert launch.warm_argv(["ruff", "check"]) is None
    monkeypatch.setenv("HEADLAB_TESTS_FRESH_PYTHON", "1")
    assert launch.warm_argv([python, "scripts/train.py"]) is None
