"""A small tuning process for the kill/resume and concurrency tests (not a test module).

python tests/measure_child.py DB tune SEED COUNT   # measure COUNT candidates, print stats
python tests/measure_child.py DB write TAG COUNT   # append COUNT fake records one by one
"""

from __future__ import annotations

import json
import sys
import time

from candidates import default_variants, matmul_task

from compiler.measure import LocalBuilder, LocalRunner, MeasureInput, Measurer, MeasureSettings
from compiler.records import MeasureRecord, SQLiteStore, host_target_info

SLOW = MeasureSettings(number=1, repeat=3, min_repeat_ms=1.0, cooldown_s=0.05)


def tune(db: str, seed: int, count: int) -> None:
    task = matmul_task(24, 24, 24)
    inputs = [MeasureInput(task, s) for s in default_variants(task, count, seed=seed)]
    with SQLiteStore(db) as store, LocalBuilder(workers=1) as b, LocalRunner(settings=SLOW) as r:
        m = Measurer(builder=b, runner=r, store=store)
        for k in range(0, len(inputs), 4):
            m.measure(inputs[k : k + 4])
        print(json.dumps({"measured": m.stats.measured, "skipped": m.stats.skipped}))


def write(db: str, tag: str, count: int) -> None:
    target = host_target_info().target
    with SQLiteStore(db) as store:
        for i in range(count):
            steps = [{"kind": "split", "stage": 0, "iter": 0, "factors": [i], "tag": tag}]
            rec = MeasureRecord(f"wk-{tag}", target, steps, (1e-3 + i * 1e-6,), None, time.time())
            store.add([rec])


if __name__ == "__main__":
    path, mode, arg, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "tune":
        tune(path, int(arg), n)
    else:
        write(path, arg, n)
