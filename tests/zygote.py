"""A warm Python for the tests' script runs (started by tests/launch.py, not a user tool).

Importing Lightning costs ~5 s of CPU here (it imports torchmetrics, which imports
torchvision, torch._dynamo and scipy.signal), about half of what a one-epoch run on the
tests' tiny data costs. This process imports it once, then forks a child per request; the
child becomes what ``python SCRIPT ARGS`` (or ``python -m MODULE ARGS``) would be: the
request's argv, working folder, environment, standard streams, ``sys.path``, signal
handlers and process group, and the interpreter's own exit (atexit, exit status, a
traceback or death by SIGINT for what the script leaves uncaught). What the imports print
on stderr is replayed to every child, as a fresh interpreter would print it.

Protocol on the Unix socket, one connection per run: the client sends an 8-byte length
with three descriptors (stdin, stdout, stderr), then that many bytes of JSON
``{"argv", "cwd", "env", "new_session"}``; the server answers ``PID\\n`` at once and
``EXIT_CODE\\n`` (negative: killed by that signal) when the child has ended.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import signal
import socket
import sys
import tempfile

#: what a script run by the tests imports anyway; one import here instead of one per run
PRELOAD = (
    "torch",
    "lightning",
    "hydra",
    "omegaconf",
    "headlab.run.train",
    "headlab.run.from_checkpoint",
    "headlab.run.outcome",
    "headlab.sweeps.interrupt",
)


def preload() -> bytes:
    """Import PRELOAD and return what the imports wrote to stderr."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as said:
        os.dup2(said.fileno(), 2)
        try:
            for name in PRELOAD:
                __import__(name)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        said.seek(0)
        return said.read()


def receive(conn: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _, _ = socket.recv_fds(conn, 8, 3)
    size = int.from_bytes(header, "big")
    payload = bytearray()
    while len(payload) < size:
        chunk = conn.recv(size - len(payload))
        if not chunk:
            raise ConnectionError("the client left before its request was complete")
        payload += chunk
    return json.loads(payload), list(fds)


def reap(waiting: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):  # the test gave up on it
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            conn.close()


def serve(listener: socket.socket) -> tuple[dict, list[int]] | None:
    """Fork a child per request; return the request in the child, None when pytest left."""
    selector = selectors.DefaultSelector()
    wake_read, wake_write = os.pipe()
    for fd in (wake_read, wake_write):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector.register(listener, selectors.EVENT_READ, "request")
    selector.register(wake_read, selectors.EVENT_READ, "ended")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    waiting: dict[int, socket.socket] = {}
    while True:
        for key, _ in selector.select():
            if key.data == "parent" and not os.read(sys.stdin.fileno(), 1024):
                return None  # pytest closed our stdin: it has ended
            if key.data == "ended":
                while True:
                    try:
                        if not os.read(wake_read, 1024):
                            break
                    except BlockingIOError:
                        break
                reap(waiting)
            if key.data == "request":
                conn, _ = listener.accept()
                try:
                    job, fds = receive(conn)
                except (OSError, ValueError):
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    for fd in (wake_read, wake_write):
                        os.close(fd)
                    selector.close()
                    listener.close()
                    conn.close()
                    for other in waiting.values():
                        other.close()
                    return job, fds
                for fd in fds:
                    os.close(fd)
                try:
                    conn.sendall(f"{pid}\n".encode())
                    waiting[pid] = conn
                except OSError:
                    conn.close()


def become(job: dict, fds: list[int], said: bytes, base_path: list[str]) -> None:
    """Turn this forked child into the fresh interpreter the job asks for."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if job["new_session"]:
        os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    encoding = os.environ.get("PYTHONIOENCODING") or "utf-8"
    # new standard streams on the new descriptors, buffered as a fresh interpreter's are
    binary = ((0, "rb"), (1, "wb"), (2, "wb"))
    stdin, stdout, stderr = (open(fd, mode, closefd=False) for fd, mode in binary)  # noqa: SIM115
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(stdin, encoding)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(stdout, encoding, line_buffering=os.isatty(1))
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        stderr, encoding, "backslashreplace", line_buffering=True
    )
    if said:
        sys.stderr.buffer.write(said)
        sys.stderr.flush()
    argv = job["argv"]
    first = os.path.dirname(os.path.abspath(argv[0])) if argv[0] != "-m" else os.getcwd()
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [first, *extra, *base_path]
    sys.argv = argv[1:] if argv[0] == "-m" else list(argv)
    sys.orig_argv = [sys.executable, *argv]
    import numpy

    numpy.random.seed()  # fresh entropy, as a new interpreter's global RandomState has


def main() -> None:
    address = sys.argv[1]
    said = preload()
    own = {os.path.dirname(os.path.abspath(__file__))}
    own.update(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    base_path = [p for p in sys.path if p not in own]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    print("ready", flush=True)
    request = serve(listener)
    if request is None:
        return
    job, fds = request
    become(job, fds, said, base_path)
    import runpy

    if job["argv"][0] == "-m":
        runpy.run_module(job["argv"][1], run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(job["argv"][0], run_name="__main__")


if __name__ == "__main__":
    main()
