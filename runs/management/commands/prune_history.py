"""manage.py prune_history [--days N] [--keep N] [--dry-run]"""

from __future__ import annotations

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from connections import audit
from runs.history import prune
from runs.models import SiteState
from runs.venvs import prune_unused


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{text}” is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


class Command(BaseCommand):
    help = (
        "Delete runs (with their log, deliveries and stored files) that finished more than --days days ago, "
        "always keeping the newest --keep runs and stored files of every task; then remove the script environments "
        "no run used for COURIER_VENV_KEEP_DAYS days."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=non_negative, default=None,
                            help=f"Keep everything younger than this many days (default COURIER_RETENTION_DAYS = {settings.COURIER_RETENTION_DAYS}).")
        parser.add_argument("--keep", type=non_negative, default=None,
                            help=f"Always keep this many newest runs and files per task (default COURIER_RETENTION_KEEP = {settings.COURIER_RETENTION_KEEP}).")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, days, keep, dry_run, **options):
        days = settings.COURIER_RETENTION_DAYS if days is None else days
        keep = settings.COURIER_RETENTION_KEEP if keep is None else keep
        report = prune(days, keep, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        if not dry_run:
            audit.record_command(SiteState.get(), f"Pruned the history: deleted {report.runs} run(s) and {report.files} stored file(s) "
                                 f"older than {days} days, keeping the newest {keep} per task")
        self.stdout.write(
            f"{verb} {report.runs} run(s) and {report.files} stored file(s), {report.bytes} bytes "
            f"(older than {days} days; the newest {keep} per task kept)."
        )
        if not dry_run:
            environments = prune_unused(settings.COURIER_VENV_KEEP_DAYS)
            self.stdout.write(f"Removed {len(environments)} script environment(s) unused for {settings.COURIER_VENV_KEEP_DAYS} days"
                              + "".join(f"\n  {path.name}" for path in environments))
        if report.file_errors:
            raise CommandError("Some stored files could not be deleted:\n" + "\n".join(report.file_errors))
