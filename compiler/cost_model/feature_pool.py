"""Feature extraction spread over the machine's cores (Ansor extracts features on
a thread pool in C++; Python threads would serialize on the GIL, so this uses
spawned processes).

    >>> rows = compute_rows(dag, states, compute)  # compute(state) for each, on all cores

The calling process works too: the step lists are cut into chunks, idle
workers take chunks from the front of the queue and the caller computes
chunks from its back. So `cores - 1` worker processes keep every core busy,
and a worker still starting (spawning takes a second or two, the first time),
a dead one (its chunk goes back to the queue) or none at all (a daemonic
process may not have children) only means the caller computes more.

Worth it for a batch, not for a handful of states: a chunk costs a pickled DAG
and step lists one way and float32 rows the other (about 1 ms), a state
4-10 ms to lower and walk. `SKETCHTUNE_FEATURE_WORKERS` sets the pool size
(0: compute in the calling process only).

While `workers_held()` is in effect (a kernel is being timed on one core while
the next round's search runs beside it), no chunk goes to a worker and none is
started: the search stays in the calling process, on the other core. Chunks
still queued when it ends go to the workers again.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import wait

import numpy as np

from compiler.measure.worker import Worker, WorkerCrash, WorkerError, WorkerTimeout
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, Step
from compiler.settings import settings
from compiler.te.dag import ComputeDAG

CHUNK = 24  # states a chunk: small enough to balance, large enough to amortize
MIN_PARALLEL = 2 * CHUNK  # smaller batches are computed in the calling process
CHUNK_TIMEOUT_S = 300.0  # a chunk never takes this long; past it the worker is killed

_workers: list[Worker] = []
_held = threading.Event()  # set: compute in the calling process only (see above)
stats = {"pool_chunks": 0, "local_chunks": 0}  # where chunks were computed (this process)

Rows = np.ndarray
Compute = Callable[[State], Rows]


def pool_size() -> int:
    """Worker processes to use besides the caller (SKETCHTUNE_FEATURE_WORKERS or cores - 1)."""
    return settings().feature_workers


def compute_rows(dag: ComputeDAG, states: Sequence[State], compute: Compute) -> list[Rows | None]:
    """`compute(state)` for each state (of `dag`), on the pool's workers (which get
    the step lists and replay them; None: they did not replay) and in this process."""
    chunks = [list(states[i : i + CHUNK]) for i in range(0, len(states), CHUNK)]
    results: list[list | None] = [None] * len(chunks)
    workers = []
    if len(states) >= MIN_PARALLEL:
        workers = list(_workers) if _held.is_set() else _get_workers()
    queue = deque(range(len(chunks)))
    busy: dict[Worker, int] = {}
    while queue or busy:
        for w in list(workers):
            if w not in busy and queue and not _held.is_set() and _ready(w, workers):
                i = queue.popleft()
                try:
                    steps = [st.steps for st in chunks[i]]
                    w.submit(_chunk_rows, (dag, steps, compute), CHUNK_TIMEOUT_S)
                    busy[w] = i
                except (OSError, WorkerCrash, WorkerTimeout):
                    queue.appendleft(i)
                    workers.remove(w)
        if queue:  # the caller takes chunks from the other end of the queue
            i = queue.pop()
            results[i] = [compute(st) for st in chunks[i]]
            stats["local_chunks"] += 1
        if not busy:
            continue
        ready = wait([w.conn for w in busy], timeout=0 if queue else CHUNK_TIMEOUT_S)
        for w in list(busy):
            if w.conn in ready:
                i = busy.pop(w)
                try:
                    results[i] = w.receive()
                    stats["pool_chunks"] += 1
                except (WorkerCrash, WorkerError):
                    queue.append(i)  # computed here (or by another worker) instead
                    workers.remove(w)
            elif not queue and not ready:
                w.kill()  # past the deadline
                queue.append(busy.pop(w))
                workers.remove(w)
    return [r for got in results for r in got]  # type: ignore[union-attr]


@contextmanager
def workers_held() -> Iterator[None]:
    """No chunk goes to a worker (from any thread) until the block ends."""
    _held.set()
    try:
        yield
    finally:
        _held.clear()


def _chunk_rows(dag: ComputeDAG, step_lists: list[tuple[Step, ...]], compute: Compute):
    out: list[Rows | None] = []
    for steps in step_lists:
        try:
            state = State.replay(dag, steps)
        except ScheduleError:
            out.append(None)
            continue
        out.append(compute(state))
    return out


def _get_workers() -> list[Worker]:
    """This process's workers, started on first use (none in a daemonic process,
    which may not have children)."""
    n = pool_size()
    if multiprocessing.current_process().daemon:
        return []
    while len(_workers) < n:
        _workers.append(Worker())
    for w in _workers[n:]:
        w.close()
    del _workers[n:]
    for w in _workers:
        w.start()
    return list(_workers)


def _ready(w: Worker, workers: list[Worker]) -> bool:
    """Whether `w` can take a chunk now; a worker that died starting is dropped."""
    try:
        return w.poll_ready()
    except (OSError, WorkerCrash, WorkerError, WorkerTimeout):
        workers.remove(w)
        return False


def shutdown() -> None:
    """Stop the workers (a later batch starts new ones)."""
    for w in _workers:
        w.close()
    _workers.clear()


atexit.register(shutdown)
