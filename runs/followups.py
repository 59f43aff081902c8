"""What follows a finished run: a retry, the next task of a sequence, the mails — in one ordered list.

The runner calls `after_run` once the run's final status is saved, so a
crash in here can never leave the run itself unrecorded; the reaper does
the same for a run whose worker was lost.
"""

from __future__ import annotations

import logging

from runs import alerts, notify, retries, sequence
from runs.models import Run
from runs.pipeline.log import RunLogger

logger = logging.getLogger(__name__)


def after_run(run: Run, log: RunLogger) -> None:
    for step in STEPS:
        try:
            step(run, log)
        except Exception:  # noqa: BLE001 - one failing follow-up must not stop the others
            logger.exception("Follow-up %s of run %s failed", step.__name__, run.pk)


# Follow-up steps, in order; each takes (run, log) and looks at the run's status to see
# whether it applies. The retry decision must come first: the sequence and the failure
# mail act only when no retry follows, which they read as the run's next attempt
# (runs/state.py `next_attempt`). The recovered mail reads which runs' failure mails went out.
STEPS = (
    retries.schedule_retry, sequence.continue_chain, notify.send_success_mail, notify.send_failure_mail,
    alerts.send_recovered_mail, alerts.send_held_mail,
)
