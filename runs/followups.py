"""What follows a finished run: a retry, the next task of a sequence, the failure mail.

The runner calls `after_run` once the run's final status is saved, so a
crash in here can never leave the run itself unrecorded.
"""

from __future__ import annotations

import logging

from runs import notify, retries, sequence
from runs.models import Run

logger = logging.getLogger(__name__)


def after_run(run: Run, log) -> None:
    for step in STEPS:
        try:
            step(run, log)
        except Exception:  # noqa: BLE001 - one failing follow-up must not stop the others
            logger.exception("Follow-up %s of run %s failed", step.__name__, run.pk)


# Follow-up steps, in order; each takes (run, log). Retries and sequences
# (runs/retries.py, runs/sequence.py) and notifications (runs/notify.py)
# register here. The retry decision must come before the failure mail: the
# mail goes out only when no retry follows, which it reads from `run.retries`.
STEPS: list = [retries.schedule_retry, sequence.continue_chain, notify.send_success_mail, notify.send_failure_mail]
