"""Control characters in names and text, for model fields and import_config alike.

A NUL ends a string early in C libraries and PostgreSQL refuses it; a line
break or escape sequence in a name garbles logs, mails and FTP commands.
Names (of organizations, connections, projects, tasks) may hold none; longer
text may hold the tab and line breaks it needs.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# Unicode category Cc: C0 (U+0000–U+001F), DEL and C1 (U+0080–U+009F).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TAB = "\t"
LINE_BREAKS = "\t\n\r"


def control_character_problem(text: str, allowed: str = "") -> str | None:
    """“contains a control character (U+0000)”, or None when `text` has none besides `allowed`."""
    found = sorted({char for char in CONTROL.findall(text) if char not in allowed})
    if not found:
        return None
    points = ", ".join(f"U+{ord(char):04X}" for char in found)
    return f"contains a control character ({points})" if len(found) == 1 else f"contains control characters ({points})"


def validate_plain_name(value: str) -> None:
    """A model-field validator: a name is plain text on one line."""
    if problem := control_character_problem(value):
        raise ValidationError(f"The name {problem}; use plain text on one line.", code="control_character")
