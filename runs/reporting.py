"""Runs as plain data, for `--json` output and the command line."""

from __future__ import annotations

from datetime import datetime

from runs.models import Run


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _outcome(run: Run) -> dict:
    """What every listing of a run says first: which run, of which task, and how it ended."""
    return {"run": run.pk, "task": str(run.task), "status": run.status, "attempt": run.attempt,
            "rows": run.rows, "error": run.error or None}


def run_summary(run: Run) -> dict:
    """The object `run_task --json` prints (SPEC §13)."""
    return {
        **_outcome(run),
        "files": [
            {"name": f.name, "size": f.size, "rows": f.rows, "md5": f.md5, "sha256": f.sha256}
            for f in run.files.all()
        ],
        "deliveries": [
            {"file": d.file.name if d.file else None, "destination": d.target, "status": d.status, "error": d.error or None}
            for d in run.deliveries.select_related("file")
        ],
    }


def run_row(run: Run) -> dict:
    """One entry of `runs --json`."""
    return {
        **_outcome(run),
        "trigger": run.trigger,
        "intended": iso(run.intended_at),
        "due": iso(run.due_at),
        "started": iso(run.started_at),
        "finished": iso(run.finished_at),
        "waiting_for": run.waiting_for or None,
    }
