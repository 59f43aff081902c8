"""Writing what an import read: a field only when its value differs, an object only when it is valid.

Shared by the importer and its task sections, below both.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import models

from tasks.configuration.reader import Reader


def assign(obj: models.Model, values: dict) -> bool:
    """Set the values that differ; secrets are compared in clear text so an unchanged one is not re-encrypted."""
    changed = False
    for name, value in values.items():
        field = obj._meta.get_field(name)
        if field.is_relation:
            # Compare ids: reading an unset relation of a new object raises.
            current, new = getattr(obj, field.attname), value.pk if value is not None else None
        else:
            current, new = getattr(obj, name), value
        if current != new:
            setattr(obj, name, value)
            changed = True
    return changed


def save_valid(reader: Reader, obj: models.Model, path: str, *, changed: bool = True, exclude=(), keys: Mapping[str, str] | None = None) -> None:
    """Save `obj` if it changed and is valid; else report each error at the JSON key of its field (`keys`: field → key)."""
    if not (changed or obj.pk is None):
        return
    keys = keys or {}
    try:
        obj.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            for message in messages:
                reader.error(path if field == "__all__" else f"{path}.{keys.get(field, field)}", message)
        return
    obj.save()
