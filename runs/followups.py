"""What follows a finished run: a retry, the next task of a sequence, the mails — in one ordered list.

The runner calls `after_run` once the run's final status is saved, so a
crash in here can never leave the run itself unrecorded; the reaper does
the same for a run whose worker was lost.
"""

from __future__ import annotations

import logging
from datetime import datetime

from runs import alerts, catchup, lateness, notify, retries, sequence, state, waiting
from runs.models import Run, RunStatus
from runs.pipeline.log import RunLogger

logger = logging.getLogger(__name__)


def fail(run: Run, still: dict, *, now: datetime, message: str, stage: str, permanent: bool) -> bool:
    """Fail a run that nobody finished (its worker lost, its wait over), then its follow-ups, as for any failure.

    Only if it is still as `still` says (a conditional UPDATE): a late
    heartbeat, a finish or another process that got there first wins.
    """
    if not state.move(run, RunStatus.FAILED, only_if=still, finished_at=now, error=message, error_stage=stage, permanent=permanent):
        return False
    log = RunLogger(run)
    log.error(stage, message)
    after_run(run, log)
    return True


def after_run(run: Run, log: RunLogger) -> None:
    for step in STEPS:
        try:
            step(run, log)
        except Exception:  # noqa: BLE001 - one failing follow-up must not stop the others
            logger.exception("Follow-up %s of run %s failed", step.__name__, run.pk)


# Follow-up steps, in order; each takes (run, log) and looks at the run's status to see
# whether it applies. The retry decision must come first: the sequence and the failure
# mail act only when no retry follows, which they read as the run's next attempt
# (runs/state.py `next_attempt`), and so do the runs waiting for this task and the next
# missed fire time to run late. The recovered mail of a late task comes after the run's own mails;
# the failure's recovered mail reads which runs' failure mails went out.
STEPS = (
    retries.schedule_retry, sequence.continue_chain, waiting.after_run, catchup.after_run,
    notify.send_success_mail, notify.send_failure_mail, lateness.after_run,
    alerts.send_recovered_mail, alerts.send_held_mail,
)
