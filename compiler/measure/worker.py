"""A killable worker process: calls a function in a spawned process with a deadline.

Builders and runners are made of these. A call that overruns its deadline gets
the process killed (native code cannot be interrupted); a process that dies
(segfault) is noticed by the closed pipe. Either way the next call starts a
fresh process. 'spawn' only: libgomp does not survive fork.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

_CTX = multiprocessing.get_context("spawn")


class WorkerTimeout(RuntimeError):
    """The call did not finish before its deadline; the process was killed."""


class WorkerCrash(RuntimeError):
    """The process died during the call (message: exit code or signal)."""


class WorkerError(RuntimeError):
    """The called function raised; the message is its one-line error."""


def _serve(conn: Connection, init: Callable[..., None] | None, init_args: tuple) -> None:
    """The worker's main loop: run (fn, args) requests until the pipe closes."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides
    # what it means (finish the round, then close its workers), not each worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if init is not None:
        init(*init_args)
    try:
        conn.send(("ready", None))
    except OSError:  # the parent closed the worker while it was starting
        return
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):  # the parent closed or died
            return
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except Exception as err:  # noqa: BLE001 - the parent decides what it means
            last = traceback.extract_tb(err.__traceback__)[-1:]
            where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
            reply = ("error", f"{type(err).__name__}: {err}{where}")
        try:
            conn.send(reply)
        except OSError:  # the parent stopped waiting (a timeout kill) or exited
            return


def _die_with_parent(poll_s: float = 0.5) -> None:
    """Exit when the parent process is gone, whatever killed it, even while a
    candidate hangs in native code (which the closed pipe cannot interrupt): a
    thread watches the parent's pid. (Linux's parent-death signal would fire
    when the parent *thread* that spawned the worker ends, which in a thread pool
    is any time, so it is not used.)"""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


class Worker:
    """One spawned process serving calls; restarted on demand after a kill or crash."""

    def __init__(self, init: Callable[..., None] | None = None, init_args: tuple = ()):
        self._init, self._init_args = init, init_args
        self._proc: Any = None
        self._conn: Connection | None = None
        self._ready = False
        self.deadline = 0.0
        self.restarts = 0

    def start(self) -> None:
        """Start the process now (spawning takes a few hundred ms: start early)."""
        if self._proc is not None and self._proc.is_alive():
            return
        parent, child = _CTX.Pipe()
        self._proc = _CTX.Process(
            target=_serve, args=(child, self._init, self._init_args), daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self._ready = False

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until the started process has run its init (imports, pinning)."""
        self.start()
        if self._ready:
            return
        if not self.conn.poll(timeout_s):
            self.kill()
            raise WorkerTimeout(f"worker did not start within {timeout_s:g} s")
        self.receive()
        self._ready = True

    def poll_ready(self) -> bool:
        """Started (starting it if needed) and past its init, without blocking."""
        self.start()
        if not self._ready and self.conn.poll(0):
            self.wait_ready()
        return self._ready

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "worker not started"
        return self._conn

    def submit(self, fn: Callable[..., Any], args: tuple, timeout_s: float) -> None:
        """Send a call; collect it with `receive` (after `conn` is readable or the deadline)."""
        self.wait_ready()
        self.conn.send((fn, args))
        self.deadline = time.monotonic() + timeout_s

    def receive(self) -> Any:
        """The reply of the submitted call, or WorkerError / WorkerCrash."""
        try:
            status, value = self.conn.recv()
        except (EOFError, ConnectionError, OSError):
            raise WorkerCrash(self._death_reason()) from None
        if status == "error":
            raise WorkerError(value)
        return value

    def call(self, fn: Callable[..., Any], args: tuple, timeout_s: float) -> Any:
        """Submit and wait: WorkerTimeout past `timeout_s` (the process is killed)."""
        self.submit(fn, args, timeout_s)
        if not self.conn.poll(timeout_s):
            self.kill()
            raise WorkerTimeout(f"no answer within {timeout_s:g} s")
        return self.receive()

    def kill(self) -> None:
        """Stop the process at once; the next call starts a new one."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self.restarts += 1
        self._close()

    def close(self) -> None:
        """Ask the process to exit (closing its pipe), kill it if it does not."""
        proc = self._proc
        self._close()  # forgets a process that already died
        if proc is not None:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._proc = None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None and not self._proc.is_alive():
            self._proc = None

    def _death_reason(self) -> str:
        proc = self._proc
        if proc is not None:
            proc.join(timeout=5)
        code = None if proc is None else proc.exitcode
        self._proc = None
        self._close()
        self.restarts += 1
        if code is not None and code < 0:
            return f"worker process killed by {signal.Signals(-code).name}"
        return f"worker process exited (code {code})"
