"""Tuning progress on stderr: on a terminal, the live tuning table (one row per
task, then the estimated end-to-end latency, trials spent and elapsed time,
redrawn per round); otherwise (a log file, CI) one plain line per round."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tasks.options import NO_TRIAL_LIMIT
from tasks.tuning_session import TuningSession


def tuning_table(session: TuningSession) -> Group:
    table = Table(title=f"tuning {session.options.model}", title_justify="left")
    for col, justify in (("ID", "right"), ("Task", "left"), ("FLOP", "right"),
                         ("Weight", "right"), ("Latency (ms)", "right"), ("GFLOP/s", "right"),
                         ("Trials", "right"), ("Done", "center")):  # fmt: skip
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in session.table():
        table.add_row(
            str(r["id"]), r["task"], f"{r['flops']:.3g}", str(r["weight"]),
            "-" if r["latency_ms"] is None else f"{r['latency_ms']:.4f}",
            "-" if r["gflops"] is None else f"{r['gflops']:.1f}",
            str(r["trials"]), "yes" if r["done"] else "",
        )  # fmt: skip
    est = session.estimated_ms
    footer = Text(
        f"Estimated total latency: {'-' if est is None else f'{est:.3f} ms'} | "
        f"Trials: {spent(session)} (+{session.resumed} resumed) | "
        f"Elapsed: {time.time() - session.started:.0f} s"
    )
    return Group(table, footer)


def spent(session: TuningSession) -> str:
    """Trials spent of the budget (`37/256`, or `37` without a trial limit), and the
    minutes of a time box (`37 | 2.1/30 min`)."""
    o = session.options
    text = f"{session.new_trials}" + ("" if o.trials == NO_TRIAL_LIMIT else f"/{o.trials}")
    if o.minutes is not None:
        text += f" | {(time.time() - session.started) / 60:.1f}/{o.minutes:g} min"
    return text


def progress_line(session: TuningSession, line: dict) -> str:
    """One round as plain text: task, trials done of the run's budget, the estimate."""
    est = session.estimated_ms
    best = line.get("task_best_s")
    return (
        f"round {line['round']}: {line['task_name']}: {line['trials']} trials"
        f" (best {'-' if best is None else f'{best * 1e3:.4f} ms'}) | "
        f"trials {spent(session)} | estimated "
        f"{'-' if est is None else f'{est:.3f} ms'} | elapsed {time.time() - session.started:.0f} s"
    )


@contextmanager
def show_progress(listeners: list) -> Iterator[None]:
    """While the block runs, show each round on stderr: the live table on a terminal,
    else a plain line per round."""
    if sys.stderr.isatty():
        live = Live(console=Console(stderr=True), refresh_per_second=2, transient=False)

        def on_round(session: TuningSession, line: dict) -> None:
            live.update(tuning_table(session), refresh=True)

        live.start()
    else:
        live = None

        def on_round(session: TuningSession, line: dict) -> None:
            print(progress_line(session, line), file=sys.stderr, flush=True)

    listeners.append(on_round)
    try:
        yield
    finally:
        listeners.remove(on_round)
        if live is not None:
            live.stop()
