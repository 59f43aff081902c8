"""The one failure type of the pipeline: which stage failed and whether a retry can help."""

from __future__ import annotations


class StageFailure(Exception):
    def __init__(self, stage: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.permanent = permanent


class RunHeld(Exception):
    """The row guard stopped the delivery: the stored files wait for a person to release or discard them."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report
