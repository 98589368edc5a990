"""The task scheduler: spend a network's trial budget where its latency falls fastest.

    >>> from compiler.task_scheduler import TaskScheduler
    >>> sched = TaskScheduler(tasks, policies, strategy="gradient",       # doctest: +SKIP
    ...                       log_path="run/decisions.jsonl")
    >>> result = sched.tune(measurer, trials=2000)                        # doctest: +SKIP

or, step by step (what `tune` does, loop.py):

    >>> sched.resume(store, target)                                       # doctest: +SKIP
    >>> while (i := sched.next_task()) is not None:                       # doctest: +SKIP
    ...     states = sched.propose(i)            # [] marks the task done
    ...     costs = ...                          # build and measure them
    ...     sched.record(i, states, costs, build_s=b, measure_s=m)

Objective f (seconds): by default sum over tasks of weight x best latency, the
estimated end-to-end latency; `objective=` takes any function of the list of
best latencies. A task with no valid measurement has best latency inf, so the
default f is inf (null in the log) until every task has one; such a live task
gets gradient -inf and is tuned first (Ansor counts it as 1e10 s, to the
same effect), and a task that never gets one keeps f at inf. Global early
stopping counts trials since f last fell, where a task's first valid
measurement always counts as a fall.

`baselines=` gives per task a schedule measured in its first round (the
default schedule the network runs untuned, say): then no task's best, and not
f, starts worse than the untuned network.

Strategies: "gradient" (a warm-up round per task, then the most negative
gradient, epsilon-greedy; see gradient.py) and "round-robin" (the live task
with the fewest rounds). A task is done when its policy proposes nothing
("search space exhausted"), a round measures nothing ("no new candidate"),
MAX_ERRORS_IN_A_ROW candidates failed in a row, it went `early_stopping`
trials without lowering its best latency by at least 1 % (task_state.MIN_GAIN),
or by global early stopping. Random choices use a generator seeded with
(seed, global round index): the same seed and the same measurements give the
same decisions, after a resume too.

Decision log (`log_path`): JSON lines, appended one per round as it ends (a
resumed run appends to the same file; read it with `read_decision_log`):

    round         global round index (0, 1, ...; continues after a resume)
    task          index of the task tuned in this round
    task_name     its name;  workload_key: its workload key
    choice        "warmup" | "gradient" | "epsilon" | "round-robin"
                  ("manual": `record` without a `next_task` choice of that task)
    trials        measurements in this round;  errors: how many of them failed
    search_s      seconds the policy spent proposing (propose), and waiting for
                  the search run beside this round's timing to finish
    build_s       seconds building;  measure_s: seconds measuring
    ahead_s       seconds a policy searched its next round beside this round's
                  timing (`tune(ahead=True)`: the task likely to come next)
    learn_s       seconds the policy took to learn from the results (features of
                  the measured programs, retraining the cost model)
    wall_s        wall-clock seconds since the scheduler started (a resumed
                  run continues from the logged value)
    total_trials  trials of every task so far (restored ones included)
    task_best_s   the task's best latency after the round (null: none valid)
    f_s           f after the round (null while not finite)
    timestamp     Unix time the line was written
    gradients     one object per task, the terms the choice was made with:
                  {"task", "backward", "forward", "similarity", "gradient"}
                  (seconds of f per round; null where not computed: before a
                  task's warm-up, for a done task, or a -inf gradient)
    task_done, stop_reason   whether the task stopped after this round and why
    strategy      "gradient" or "round-robin"

Resume restores per task the trials, rounds, best latency and history (and
the global trial count and early-stopping counters) from the records
database; round sizes come from the decision log when it matches the records,
else the records are cut into rounds of per_round (resume.py).
"""

from collections.abc import Sequence
from typing import Any

from compiler.search.policy import SearchPolicy
from compiler.task import SearchTask
from compiler.task_scheduler.decision_log import KEYS as DECISION_LOG_KEYS
from compiler.task_scheduler.decision_log import read_decision_log
from compiler.task_scheduler.gradient import GradientConfig, TaskGradient
from compiler.task_scheduler.loop import SchedulerResult, round_size
from compiler.task_scheduler.objective import Objective, weighted_latency
from compiler.task_scheduler.scheduler import TaskScheduler
from compiler.task_scheduler.similarity import similarity_groups
from compiler.task_scheduler.strategy import STRATEGIES
from compiler.task_scheduler.task_state import TaskState

__all__ = [
    "DECISION_LOG_KEYS",
    "STRATEGIES",
    "GradientConfig",
    "Objective",
    "SchedulerResult",
    "TaskGradient",
    "TaskScheduler",
    "TaskState",
    "create",
    "read_decision_log",
    "round_size",
    "similarity_groups",
    "weighted_latency",
]


def create(
    kind: str, tasks: Sequence[SearchTask], policies: Sequence[SearchPolicy], **options: Any
) -> TaskScheduler:
    """A task scheduler by strategy name: "gradient" or "round-robin"."""
    return TaskScheduler(tasks, policies, strategy=kind, **options)
