"""The live tuning table on stderr (STYLE.md §18): one row per task, then the
estimated end-to-end latency, trials spent and elapsed time, redrawn per round."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tasks.tuning_session import TuningSession


def tuning_table(session: TuningSession) -> Group:
    table = Table(title=f"tuning {session.options.model}", title_justify="left")
    for col, justify in (("ID", "right"), ("Task", "left"), ("FLOP", "right"),
                         ("Weight", "right"), ("Latency (ms)", "right"), ("GFLOP/s", "right"),
                         ("Trials", "right"), ("Done", "center")):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in session.table():
        table.add_row(
            str(r["id"]), r["task"][:40], f"{r['flops']:.3g}", str(r["weight"]),
            "-" if r["latency_ms"] is None else f"{r['latency_ms']:.4f}",
            "-" if r["gflops"] is None else f"{r['gflops']:.1f}",
            str(r["trials"]), "yes" if r["done"] else "",
        )  # fmt: skip
    est = session.estimated_ms
    footer = Text(
        f"Estimated total latency: {'-' if est is None else f'{est:.3f} ms'} | "
        f"Trials: {session.new_trials}/{session.options.trials} (+{session.resumed} resumed) | "
        f"Elapsed: {time.time() - session.started:.0f} s"
    )
    return Group(table, footer)


@contextmanager
def live_table(listeners: list, *, enabled: bool = True) -> Iterator[None]:
    """Subscribe a rich Live table to the flow's rounds while the block runs."""
    if not enabled:
        yield
        return
    console = Console(stderr=True)
    live = Live(console=console, refresh_per_second=2, transient=False)

    def on_round(session: TuningSession, line: dict) -> None:
        live.update(tuning_table(session), refresh=True)

    listeners.append(on_round)
    live.start()
    try:
        yield
    finally:
        live.stop()
        listeners.remove(on_round)
