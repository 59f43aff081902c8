"""The run log: lines tagged with a stage, written as they happen, secrets masked."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from connections.masking import Masker, masker_for
from runs.models import LogLevel, Run, RunLog


class RunLogger:
    def __init__(self, run: Run, echo: Callable[[str], None] | None = None) -> None:
        self.run = run
        self.echo = echo
        # Courier's own keys from the first line on; the runner sets the task's
        # masker (tasks/masking.py) once the parameters are read.
        self.masker: Masker = masker_for()

    def mask(self, text: str) -> str:
        return self.masker.mask(text)

    def write(self, stage: str, message: str, level: str = LogLevel.INFO) -> None:
        message = self.mask(message)
        RunLog.objects.create(run=self.run, stage=stage, level=level, message=message)
        if self.echo:
            self.echo(f"{timezone.localtime():%H:%M:%S} {level.upper():7} [{stage}] {message}")

    def info(self, stage: str, message: str) -> None:
        self.write(stage, message, LogLevel.INFO)

    def warning(self, stage: str, message: str) -> None:
        self.write(stage, message, LogLevel.WARNING)

    def error(self, stage: str, message: str) -> None:
        self.write(stage, message, LogLevel.ERROR)
