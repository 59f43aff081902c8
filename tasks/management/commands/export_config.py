"""manage.py export_config [--include-secrets] > courier.json"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from tasks.configuration.exporter import export_config


class Command(BaseCommand):
    help = "Write every organization, connection, GPG key, project and task as JSON (SPEC §12)."

    def add_arguments(self, parser):
        parser.add_argument("--include-secrets", action="store_true", help="Include passwords, keys and tokens in clear text.")

    def handle(self, include_secrets: bool, **options):
        self.stdout.write(json.dumps(export_config(include_secrets), indent=2, ensure_ascii=False))
