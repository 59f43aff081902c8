"""The row guard: a result with an unexpected number of rows fails the run, is held, or is warned about.

A task may set any of: no rows breaks the guard (`source_fail_on_empty`);
fewer than N or more than M rows; a row count more than X % above or below
the median of its last K successful runs. `check` runs once the rows are
known (after the source and any processing script) and before any file is
made: the verdict and every number it compared go into the run log and onto
the run (`Run.guard_report`, shown on Task Details). When the guard is
broken, the task's action says what follows:

- fail: the run fails at the guard stage (a transient failure: the task's
  retries run the source again, when the data may be complete);
- warn: a warning in the log, and the run goes on;
- hold: the output stage still makes and stores the files, then `hold`
  stops the run before any delivery; the run is "held" until a person
  releases it (the stored files are delivered once, runs/pipeline/release.py)
  or discards it (runs/held.py).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from runs.models import Run, RunStatus, Stage
from runs.pipeline.context import RunContext
from runs.pipeline.errors import RunHeld, StageFailure
from tasks.models import GuardAction, Task

STAGE = Stage.GUARD
ACTIONS = {
    GuardAction.FAIL: "the run fails",
    GuardAction.HOLD: "the files are made and held; nothing is delivered until someone releases them",
    GuardAction.WARN: "only a warning: the run goes on",
}


@dataclass
class Verdict:
    rows: int
    checked: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.broken

    def report(self, action: str) -> str:
        text = f"Row guard: {_rows(self.rows)}; " + "; ".join(self.checked) + "."
        if self.passed:
            return text + " Passed."
        return text + f" Broken: {'; '.join(self.broken)}. Action: {ACTIONS[action]}."


def _rows(n: int | float) -> str:
    return f"{n:g} row{'s' if n != 1 else ''}"


def earlier_rows(task: Task, run: Run, count: int) -> list[int]:
    """Row counts of the task's latest `count` successful runs before `run`, newest first."""
    runs = task.runs.filter(status=RunStatus.SUCCEEDED, rows__isnull=False, pk__lt=run.pk).order_by("-id")
    return list(runs.values_list("rows", flat=True)[:count])


def judge(task: Task, rows: int, earlier: list[int]) -> Verdict:
    """Compare `rows` with the task's limits and with the median of `earlier` (the last K successful runs)."""
    verdict = Verdict(rows)
    if task.source_fail_on_empty:
        verdict.checked.append("no rows is not allowed")
        if rows == 0:
            verdict.broken.append("the result has no rows")
    if task.guard_min_rows is not None:
        verdict.checked.append(f"at least {_rows(task.guard_min_rows)} wanted")
        if rows < task.guard_min_rows:
            verdict.broken.append(f"fewer than {_rows(task.guard_min_rows)}")
    if task.guard_max_rows is not None:
        verdict.checked.append(f"at most {_rows(task.guard_max_rows)} wanted")
        if rows > task.guard_max_rows:
            verdict.broken.append(f"more than {_rows(task.guard_max_rows)}")
    if task.guard_median_runs:
        _compare_with_median(verdict, task, earlier)
    return verdict


def _compare_with_median(verdict: Verdict, task: Task, earlier: list[int]) -> None:
    wanted, allowed = task.guard_median_runs, task.guard_median_percent or 0
    if len(earlier) < wanted:
        verdict.checked.append(f"median not compared: {len(earlier)} of the {wanted} successful runs it needs so far")
        return
    median = statistics.median(earlier)
    if median == 0:
        verdict.checked.append(f"median of the last {wanted} successful runs is 0 ({', '.join(map(str, earlier))})")
        if verdict.rows:
            verdict.broken.append(f"{_rows(verdict.rows)} where the last {wanted} successful runs had a median of 0")
        return
    deviation = (verdict.rows - median) / median * 100
    direction = "above" if deviation > 0 else "below"
    verdict.checked.append(
        f"median of the last {wanted} successful runs {median:g} ({', '.join(map(str, earlier))}): "
        f"this run is {abs(deviation):.0f} % {direction} it, {allowed} % allowed either way"
    )
    if abs(deviation) > allowed:
        verdict.broken.append(f"{abs(deviation):.0f} % {direction} the median of the last {wanted} successful runs (allowed {allowed} %)")


def result_rows(ctx: RunContext) -> int | None:
    """The result's data rows: the source's count, or the sum over files whose rows are all known."""
    if ctx.rows is not None:
        return ctx.rows
    if ctx.files and all(f.rows is not None for f in ctx.files):
        return sum(f.rows for f in ctx.files)
    return None


def check(ctx: RunContext) -> None:
    """The stage after the source and processing: judge the row count; fail, warn, or mark the run to be held."""
    task = ctx.task
    if not task.has_row_guard:
        return
    rows = result_rows(ctx)
    if rows is None:
        ctx.log.warning(STAGE, "Row guard not checked: the row count of these files is not known (they are passed on as they are).")
        return
    verdict = judge(task, rows, earlier_rows(task, ctx.run, task.guard_median_runs))
    report = verdict.report(task.guard_action)
    ctx.guard_report = ctx.run.guard_report = report
    Run.objects.filter(pk=ctx.run.pk).update(guard_report=report)
    if verdict.passed:
        ctx.log.info(STAGE, report)
    elif task.guard_action == GuardAction.FAIL:
        raise StageFailure(STAGE, report, permanent=False)
    else:
        ctx.log.warning(STAGE, report)
        ctx.hold = task.guard_action == GuardAction.HOLD


def hold(ctx: RunContext) -> None:
    """The stage after the output: a run the guard marked is held here, its files stored and none delivered."""
    if ctx.hold:
        raise RunHeld(ctx.guard_report)
