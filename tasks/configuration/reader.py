"""Typed access to imported JSON that records every problem with its JSON path."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

_MISSING = object()


class ConfigError(ValueError):
    """The import was refused; `errors` lists every problem as "path: message"."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def kind_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


class Reader:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def _get(self, data: dict, key: str, path: str, default: Any) -> Any:
        value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if value is _MISSING:
            if default is _MISSING:
                self.error(f"{path}.{key}", "is required")
            return None if default is _MISSING else default
        return value

    def obj(self, data: Any, path: str, *, nullable: bool = False) -> dict | None:
        if data is None and nullable:
            return None
        if not isinstance(data, dict):
            self.error(path, f"must be an object, not {kind_name(data)}")
            return None
        return data

    def items(self, data: dict, key: str, path: str) -> list:
        value = self._get(data, key, path, [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(f"{path}.{key}", f"must be a list, not {kind_name(value)}")
            return []
        return value

    def text(self, data: dict, key: str, path: str, default: Any = "", *, required: bool = False) -> str:
        value = self._get(data, key, path, _MISSING if required else default)
        if value is None:
            return "" if default is None else default
        if not isinstance(value, str):
            self.error(f"{path}.{key}", f"must be a string, not {kind_name(value)}")
            return ""
        if required and not value.strip():
            self.error(f"{path}.{key}", "may not be empty")
        return value

    def flag(self, data: dict, key: str, path: str, default: bool = False) -> bool:
        value = self._get(data, key, path, default)
        if not isinstance(value, bool):
            self.error(f"{path}.{key}", f"must be true or false, not {kind_name(value)}")
            return default
        return value

    def number(self, data: dict, key: str, path: str, default: Any = 0, *, minimum: int = 0, nullable: bool = False, real: bool = False):
        value = self._get(data, key, path, default)
        if value is None and nullable:
            return None
        allowed = (int, float) if real else (int,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            self.error(f"{path}.{key}", f"must be {'a number' if real else 'a whole number'}, not {kind_name(value)}")
            return default
        if value < minimum:
            self.error(f"{path}.{key}", f"must be at least {minimum}")
            return default
        return value

    def choice(self, data: dict, key: str, path: str, allowed, default: Any = _MISSING, *, what: str = "value"):
        value = self._get(data, key, path, default)
        if value is None and default is None:
            return None
        if value not in allowed:
            options = ", ".join(f'"{a}"' for a in allowed if a)
            self.error(f"{path}.{key}", f'unknown {what} "{value}" (one of {options})' if isinstance(value, str)
                       else f"must be one of {options}, not {kind_name(value)}")
            return None
        return value

    def moment(self, data: dict, key: str, path: str, zone: str) -> datetime | None:
        value = self._get(data, key, path, None)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(f"{path}.{key}", f"must be an ISO date-time string or null, not {kind_name(value)}")
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.error(f"{path}.{key}", f'"{value}" is not an ISO date-time such as 2026-12-01T06:00:00')
            return None
        if moment.tzinfo is None:
            try:
                moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                moment = None  # the time zone error is reported on its own path
        return moment
