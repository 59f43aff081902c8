"""The one failure type of the pipeline: which stage failed and whether a retry can help."""

from __future__ import annotations


class StageFailure(Exception):
    def __init__(self, stage: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.permanent = permanent
