"""manage.py preview_task "<project>/<task>" [--sql] [--filename] [--at ISO-DATETIME]"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from connections.kinds import Reads
from runs.preview import preview
from tasks.lookup import NotFound, find_task


def intended_time(text: str | None, zone_name: str) -> datetime | None:
    """--at as an aware time; a time without an offset is read in the project's time zone."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"--at “{text}” is not an ISO date and time (e.g. 2024-03-31T06:00 or 2024-03-31).", returncode=2) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(zone_name))
    return value


class Command(BaseCommand):
    help = (
        "Print what a run would use: the prepared SQL exactly as it will run (sensitive values masked) "
        "and the output file name(s). Without --sql or --filename, both."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="“project/task” or the task's id")
        parser.add_argument("--sql", action="store_true", help="Print the prepared SQL, batches separated by GO lines, "
                            "then as -- comments what each ? is bound to and the parameters the SQL does not use.")
        parser.add_argument("--filename", action="store_true", help="Print the output file name(s), one per line.")
        parser.add_argument("--at", metavar="ISO-DATETIME", help="The run's intended time (default: now), in the project's time zone unless it has an offset.")

    def handle(self, name, sql: bool, filename: bool, at: str | None, **options):
        try:
            task = find_task(name)
        except NotFound as exc:
            raise CommandError(str(exc), returncode=2) from None
        if sql and task.source_reads != Reads.QUERY:
            raise CommandError(f"{task} has a {task.get_source_kind_display()} source, not a query: there is no SQL to show.", returncode=2)
        both = not sql and not filename
        result = preview(task, intended_time(at, task.project.timezone), fetch=True)
        if result.errors:
            raise CommandError(" ".join(result.errors), returncode=1)
        if (sql or both) and task.source_reads == Reads.QUERY:
            self._sql(result, labelled=both)
        if filename or both:
            self._names(result, labelled=both)

    def _sql(self, result, labelled: bool) -> None:
        if result.sql is None:
            raise CommandError(result.sql_note or "The task has no query.", returncode=1)
        if labelled:
            self.stdout.write(f"-- SQL for a run intended at {result.at:%Y-%m-%d %H:%M %Z}")
        self.stdout.write(result.sql)
        if result.bindings:
            self.stdout.write("-- Bound to the ? markers, as text:")
        several = len({b.batch for b in result.bindings}) > 1
        for b in result.bindings:
            where = f"batch {b.batch}, ? {b.marker}" if several else f"? {b.marker}"
            self.stdout.write(f"--   {where}: :{b.name} = {b.shown}")
        if result.unused:
            self.stdout.write(f"-- Parameters the SQL does not use: {', '.join(result.unused)}")

    def _names(self, result, labelled: bool) -> None:
        if labelled:
            self.stdout.write(f"-- File names for a run intended at {result.at:%Y-%m-%d %H:%M %Z}")
        for name in result.file_names:
            self.stdout.write(name)
        if result.name_note and (labelled or not result.file_names):
            self.stdout.write(f"({result.name_note})" if not labelled else f"-- {result.name_note}")
