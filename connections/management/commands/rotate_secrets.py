"""manage.py rotate_secrets: re-encrypt every stored secret under the first key of COURIER_SECRET_KEYS."""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connections import audit
from connections.secrets import SecretField, rotate, set_stored_token, stored_token
from runs.models import SiteState


def secret_fields():
    for model in apps.get_models():
        names = [f.name for f in model._meta.get_fields() if isinstance(f, SecretField)]
        if names:
            yield model, names


class Command(BaseCommand):
    help = "Re-encrypt every secret with the newest key (the first of COURIER_SECRET_KEYS); then the old keys can be dropped."

    @transaction.atomic
    def handle(self, **options):
        rotated, failures = 0, []
        for model, names in secret_fields():
            for obj in model.objects.all():
                changed = []
                for name in names:
                    token = stored_token(obj, name)
                    if not token:
                        continue
                    try:
                        set_stored_token(obj, name, rotate(token))
                    except InvalidToken:
                        failures.append(f"the {name} of {model._meta.verbose_name} “{obj}”")
                        continue
                    changed.append(name)
                if changed:
                    # A queryset update: no auto_now bump, no signals, just the new tokens.
                    model.objects.filter(pk=obj.pk).update(**{n: stored_token(obj, n) for n in changed})
                    rotated += len(changed)
        if failures:
            raise CommandError(
                f"Nothing was changed: {len(failures)} secret(s) cannot be decrypted with any configured key, "
                f"first {failures[0]}.", returncode=1,
            )
        audit.record_command(SiteState.get(), f"Re-encrypted {rotated} secret(s) under the first key")
        self.stdout.write(f"Re-encrypted {rotated} secret(s) under the first key.")
