"""The run log: lines tagged with a stage, written as they happen, secrets masked."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.utils import timezone

from runs.models import LogLevel, Run, RunLog

MASK = "********"


class RunLogger:
    def __init__(self, run: Run, echo: Callable[[str], None] | None = None) -> None:
        self.run = run
        self.echo = echo
        self._secrets: list[str] = []

    def add_secrets(self, values: Iterable[str]) -> None:
        """Values never to be written anywhere; longest first so a value containing another is masked whole."""
        merged = set(self._secrets) | {v for v in values if v and len(v) >= 3}
        self._secrets = sorted(merged, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

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
