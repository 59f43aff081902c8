"""Encryption of stored secrets and the model field that applies it.

Secrets (passwords, private keys, tokens, ODBC strings, sensitive parameter
values) are stored as MultiFernet tokens made with the keys of
COURIER_SECRET_KEYS. The clear text exists only in memory, and only when code
reads the attribute; a value that cannot be decrypted raises SecretError
naming the object and field instead of ever handing out the ciphertext.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class SecretError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        # Never echo the key material itself.
        raise ImproperlyConfigured(
            "COURIER_SECRET_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.COURIER_SECRET_KEYS))


def encrypt(clear: str) -> str:
    return fernet().encrypt(clear.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    return fernet().decrypt(token.encode("ascii")).decode("utf-8")


def rotate(token: str) -> str:
    """Re-encrypt a token under the first (newest) key."""
    return fernet().rotate(token.encode("ascii")).decode("ascii")


class _StoredToken(str):
    """A value read from the database: already ciphertext, not to be encrypted again."""


class _SecretDescriptor:
    """Keeps the ciphertext in the instance and decrypts only on access."""

    def __init__(self, field: SecretField) -> None:
        self.field = field

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        token = instance.__dict__.get(self.field.attname, "")
        if not token:
            return ""
        try:
            return decrypt(token)
        except (InvalidToken, ValueError, UnicodeError):
            raise SecretError(
                f"The {self.field.verbose_name} of {instance._meta.verbose_name} "
                f"“{instance}” cannot be decrypted with the configured COURIER_SECRET_KEYS; "
                "enter it again or restore the key it was saved with."
            ) from None

    def __set__(self, instance, value) -> None:
        if value is None or value == "":
            token = ""
        elif isinstance(value, _StoredToken):
            token = str(value)
        else:
            token = encrypt(str(value))
        instance.__dict__[self.field.attname] = token


class SecretField(models.TextField):
    """A text field whose value is stored encrypted; reading it gives the clear text."""

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only)
        setattr(cls, self.attname, _SecretDescriptor(self))

    def from_db_value(self, value, expression, connection):
        return _StoredToken(value) if value else ""

    def pre_save(self, model_instance, add):
        # The descriptor would hand back clear text: store the ciphertext.
        return model_instance.__dict__.get(self.attname, "")

    def value_from_object(self, obj):
        # Forms and serializers never see the clear text (SPEC §7).
        return ""

    def formfield(self, **kwargs):
        return None


def stored_token(instance: models.Model, field_name: str) -> str:
    """The ciphertext as stored, for rotation and tests."""
    return instance.__dict__.get(field_name, "")


def set_stored_token(instance: models.Model, field_name: str, token: str) -> None:
    instance.__dict__[field_name] = token
