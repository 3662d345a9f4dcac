"""Run the project's scripts for the tests: ``subprocess.run``/``Popen`` with a warm start.

``python SCRIPT ARGS`` and ``python -m MODULE ARGS`` are forked from tests/zygote.py, a
process that has imported torch and Lightning once; the child is what a fresh interpreter
would be (see there), so exit codes, stderr lines, signals and files are the script's own.
Anything else (``-c``, flags, other programs) runs as a real subprocess, and so does
everything when ``HEADLAB_TESTS_FRESH_PYTHON=1`` (a check that the warm start hides nothing).
The slow tier starts ~100 scripts: this saves ~7 s of CPU each.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
PIPE, STDOUT, DEVNULL = subprocess.PIPE, subprocess.STDOUT, subprocess.DEVNULL


def fresh_only() -> bool:
    return os.environ.get("HEADLAB_TESTS_FRESH_PYTHON") == "1"


class Zygote:
    """The warm process, started on first use and ended with the test session."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="headlab-zygote-")
        self.address = os.path.join(self.folder, "socket")
        pythonpath = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT)]))
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "zygote.py"), self.address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": pythonpath},
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"tests/zygote.py did not start (exit {self.process.wait()})")
        atexit.register(self.close)

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.alive():
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


_zygote: Zygote | None = None


def zygote() -> Zygote:
    global _zygote
    if _zygote is None or not _zygote.alive():
        _zygote = Zygote()
    return _zygote


def warm_argv(args: Sequence[str]) -> list[str] | None:
    """What follows the interpreter, when the warm start can run it; else None."""
    args = [str(a) for a in args]
    if fresh_only() or len(args) < 2 or args[0] != sys.executable:
        return None
    if args[1] == "-m":
        return args[1:] if len(args) >= 3 else None
    return None if args[1].startswith("-") else args[1:]


class Forked:
    """The part of ``subprocess.Popen`` the tests use, for a child of the zygote."""

    def __init__(
        self,
        args: Sequence[str],
        argv: list[str],
        *,
        cwd: str | os.PathLike | None,
        env: dict[str, str] | None,
        stdout: Any,
        stderr: Any,
        text: bool,
        start_new_session: bool,
    ) -> None:
        self.args = list(args)
        self.returncode: int | None = None
        self._folder = tempfile.mkdtemp(prefix="headlab-run-")
        self._buffer = b""
        mode = "r" if text else "rb"
        child: list[int] = [os.open(os.devnull, os.O_RDONLY)]
        self.stdout = self._stream(stdout, "stdout", mode, child)
        self.stderr = None
        if stderr == STDOUT:
            child.append(os.dup(child[1]))
        else:
            self.stderr = self._stream(stderr, "stderr", mode, child)
        job = {
            "argv": argv,
            "cwd": os.fspath(cwd or os.getcwd()),
            "env": dict(os.environ if env is None else env),
            "new_session": start_new_session,
        }
        payload = json.dumps(job).encode()
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.connect(zygote().address)
        socket.send_fds(self._conn, [len(payload).to_bytes(8, "big")], child)
        self._conn.sendall(payload)
        for fd in child:
            os.close(fd)
        self.pid = int(self._line(None))

    def _stream(self, spec: Any, name: str, mode: str, child: list[int]) -> IO | None:
        """Append the child's descriptor for ``spec``; return the reader of a PIPE."""
        if spec == PIPE:
            path = os.path.join(self._folder, name)
            # O_APPEND: our reading never moves where the child writes
            child.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
            return open(path, mode)
        if spec == DEVNULL:
            child.append(os.open(os.devnull, os.O_WRONLY))
        elif spec is None:
            child.append(os.dup(1 if name == "stdout" else 2))
        else:
            child.append(os.dup(spec if isinstance(spec, int) else spec.fileno()))
        return None

    def _line(self, timeout: float | None) -> str:
        self._conn.settimeout(timeout)
        while b"\n" not in self._buffer:
            try:
                chunk = self._conn.recv(64)
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
            if not chunk:
                raise RuntimeError("tests/zygote.py ended before the run did")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.wait(timeout=0.0001)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = int(self._line(timeout))
            self._conn.close()
        return self.returncode

    def communicate(self, input: None = None, timeout: float | None = None) -> tuple:
        self.wait(timeout)
        out = self.stdout.read() if self.stdout else None
        err = self.stderr.read() if self.stderr else None
        return out, err

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # ended since
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __del__(self) -> None:
        for stream in (getattr(self, "stdout", None), getattr(self, "stderr", None)):
            if stream is not None:
                stream.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def Popen(
    args: Sequence[str],
    *,
    cwd: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    stdout: Any = None,
    stderr: Any = None,
    text: bool = False,
    start_new_session: bool = False,
) -> Forked | subprocess.Popen:
    """``subprocess.Popen``; the child starts with Python's own SIGINT handler either way."""
    argv = warm_argv(args)
    if argv is None:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            text=text,
            start_new_session=start_new_session,
            # a shell that runs pytest in the background ignores SIGINT; children inherit it
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    return Forked(
        args,
        argv,
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=stderr,
        text=text,
        start_new_session=start_new_session,
    )


def run(
    args: Sequence[str],
    *,
    cwd: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    capture_output: bool = False,
    text: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """``subprocess.run`` (a run past ``timeout`` is killed and raises TimeoutExpired)."""
    streams = PIPE if capture_output else None
    process = Popen(args, cwd=cwd, env=env, stdout=streams, stderr=streams, text=text)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
