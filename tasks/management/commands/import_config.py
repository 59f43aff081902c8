"""manage.py import_config FILE"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from connections import audit
from tasks.configuration.changes import changes, snapshot
from tasks.configuration.importer import import_config
from tasks.configuration.reader import ConfigError


class Command(BaseCommand):
    help = "Create or update organizations, connections, GPG keys, projects and tasks from a JSON file; all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The JSON file written by export_config (or by hand, same format).")

    def handle(self, file: str, **options):
        try:
            with open(file, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.", returncode=2) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file} is not valid JSON: {exc}.", returncode=2) from None
        except RecursionError:
            # The parser gives up on lists or objects nested about a thousand deep; a Courier file is a few levels deep.
            raise CommandError(f"{file} is nested too deeply to be a Courier configuration.", returncode=2) from None
        before = snapshot()
        try:
            import_config(data)
        except ConfigError as exc:
            for line in exc.errors:
                self.stderr.write(line)
            raise CommandError(f"Nothing was imported: {len(exc.errors)} problem(s) in {file}.", returncode=2) from None
        for change in changes(before, snapshot()):
            what = "Added" if change.added else "Changed"
            audit.record_command(change.obj, f"{what} by importing {file}", audit.ADDITION if change.added else audit.CHANGE)
        self.stdout.write(f"Imported {file}.")
