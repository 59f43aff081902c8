"""The run log: lines tagged with a stage, written as they happen, secrets masked."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from django.utils import timezone

from runs.models import LogLevel, Run, RunLog

MASK = "********"
# A sign of life at most this often, so the reaper can tell a busy run from a dead one.
HEARTBEAT_EVERY = timedelta(seconds=10)


class RunLogger:
    def __init__(self, run: Run, echo: Callable[[str], None] | None = None) -> None:
        self.run = run
        self.echo = echo
        self._secrets: list[str] = []
        self._last_beat = timezone.now()

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
        self.beat()

    def info(self, stage: str, message: str) -> None:
        self.write(stage, message, LogLevel.INFO)

    def warning(self, stage: str, message: str) -> None:
        self.write(stage, message, LogLevel.WARNING)

    def error(self, stage: str, message: str) -> None:
        self.write(stage, message, LogLevel.ERROR)

    def beat(self) -> None:
        now = timezone.now()
        if now - self._last_beat >= HEARTBEAT_EVERY:
            Run.objects.filter(pk=self.run.pk).update(heartbeat_at=now)
            self._last_beat = now
