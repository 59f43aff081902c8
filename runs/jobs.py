"""django-q2 entry points: a few lines each, the work lives in the runner, firing, retries and the reaper.

django-q2 only delivers; arguments are plain ints and strings so that its
scheduler can always parse them (SPEC §11). Nothing imports this module:
django-q2 finds its functions by name ("runs.jobs.execute_run", …).
"""

from __future__ import annotations

from runs import firing, resend, retries
from runs.runner import execute


def execute_run(run_id: int) -> str:
    run = execute(int(run_id))
    return "not claimed" if run is None else run.status


def fire_project(project_id: int, trigger_kind: str, intended: str | None = None, fired: str | None = None) -> str:
    """A project's trigger fired (schedule "courier:project:<id>:<kind>"); `intended` is its fire time, `fired` when it fired."""
    fired_at = firing.parse_intended(fired) if fired else None
    # The job runs the firing's first run itself (runs/firing.py `_run_first_here`): on time at every scheduler phase.
    return firing.fire(int(project_id), str(trigger_kind), firing.parse_intended(intended), fired_at, run_here=True)


def start_retry(run_id: int) -> str:
    """A retry's one-off schedule fired (schedule "courier:retry:<run id>")."""
    return retries.start_retry(int(run_id))



def send_resend(*delivery_ids: int) -> str:
    """A person resent a stored file from Task Details (runs/resend.py `queue_resend`): send it."""
    sent = resend.send_queued([int(pk) for pk in delivery_ids])
    return ", ".join(d.status for d in sent) or "not claimed"
