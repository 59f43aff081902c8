"""One virtual environment per requirement set, built once and reused by every later run.

An environment lives in COURIER_VENV_DIR under a name derived from the
interpreter and a hash of its requirement lines. It is built under a temporary
name and renamed into place only when pip succeeded, with a ready marker
written last, so a failed or interrupted build never leaves something that
looks usable. An exclusive lock file per key makes concurrent runs (threads,
workers, machines sharing the folder) wait for one build instead of racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import venv
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from runs.procs import run_streaming

READY = "courier-ready.json"
LAST_USED = "courier-last-used"
REQUIREMENTS_FILE = "courier-requirements.txt"
LOCK_POLL_SECONDS = 0.2
# pip output that means the requirement itself is wrong: trying again cannot help.
PERMANENT_PIP_ERRORS = ("No matching distribution found", "Could not find a version", "Invalid requirement", "ResolutionImpossible")

Say = Callable[[str], None]


class VenvError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class Environment:
    path: Path
    key: str
    reused: bool

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.path / "bin"


def interpreter_tag() -> str:
    return f"{sys.implementation.name}{sys.version_info.major}{sys.version_info.minor}"


def environment_key(requirements: Sequence[str]) -> str:
    """Same interpreter and same (normalized) requirement lines: same environment."""
    text = "\n".join([sys.version.split()[0], *requirements])
    return f"{interpreter_tag()}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def root() -> Path:
    path = Path(settings.COURIER_VENV_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure(requirements: Sequence[str], *, deadline: float, say: Say, env: dict[str, str]) -> Environment:
    """The ready environment for `requirements`, building it if nobody has yet.

    `say` receives progress and pip's output line by line; `env` is the
    environment pip runs with. Raises VenvError when the build fails or
    `deadline` (time.monotonic()) passes.
    """
    key = environment_key(requirements)
    final = root() / key
    if (final / READY).is_file():
        return _reuse(final, key, say)
    with _locked(root() / f"{key}.lock", deadline, say):
        if (final / READY).is_file():  # built by another run while we waited
            return _reuse(final, key, say)
        _build(final, key, requirements, deadline=deadline, say=say, env=env)
    return Environment(final, key, reused=False)


def prune_unused(days: int, *, now: float | None = None) -> list[Path]:
    """Remove the ready environments no run has used for `days` days; returns them.

    A run marks its environment used (LAST_USED) when it starts, and no run
    lasts a day (COURIER_VENV_KEEP_DAYS is checked against the longest run),
    so one in use is never that old. One being built holds its key's lock
    and is skipped; so are build folders and leftovers without a ready marker.
    """
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = []
    for path in sorted(root().iterdir()):
        if path.name.startswith(".") or not (path / READY).is_file() or _last_used(path) >= cutoff:
            continue
        if _remove_unless_locked(path, cutoff):
            removed.append(path)
    return removed


def _last_used(path: Path) -> float:
    marker = path / LAST_USED
    return marker.stat().st_mtime if marker.exists() else (path / READY).stat().st_mtime


def _remove_unless_locked(path: Path, cutoff: float) -> bool:
    with open(root() / f"{path.name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # being built (or rebuilt) right now
        try:
            # Out of its place first: a run that looks for it now builds a new one instead.
            doomed = path.with_name(f".{path.name}.prune")
            os.rename(path, doomed)
            if _last_used(doomed) >= cutoff:  # a run took it between our look and the rename
                os.rename(doomed, path)
                return False
            shutil.rmtree(doomed, ignore_errors=True)
            return True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reuse(final: Path, key: str, say: Say) -> Environment:
    # Kept apart from the ready marker, so pruning by last use never touches what says "complete".
    (final / LAST_USED).touch()
    say(f"Reusing environment {key}; nothing to install.")
    return Environment(final, key, reused=True)


@contextmanager
def _locked(path: Path, deadline: float, say: Say) -> Iterator[None]:
    with open(path, "a") as handle:
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise VenvError("Timed out waiting for another run to finish building the same environment.") from None
                if not told:
                    say("Another run is building the same environment; waiting for it.")
                    told = True
                time.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(final: Path, key: str, requirements: Sequence[str], *, deadline: float, say: Say, env: dict[str, str]) -> None:
    build = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".build", dir=final.parent))
    try:
        # Our own python, no access to the worker's packages; pip is run from the worker.
        venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(build)
        if requirements:
            say(f"Building environment {key}: installing {', '.join(r for r in requirements if not r.startswith('-'))}.")
            _pip_install(build, requirements, deadline=deadline, say=say, env=env)
        else:
            say(f"Building environment {key} (no requirements).")
        _relocate(build, final)
        (build / LAST_USED).touch()
        marker = {"key": key, "requirements": list(requirements), "python": sys.version, "built_at": timezone.now().isoformat()}
        (build / READY).write_text(json.dumps(marker, indent=2))
        if final.exists():  # an incomplete leftover: no ready marker, or we would not be here
            shutil.rmtree(final)
        os.rename(build, final)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    say(f"Environment {key} is ready.")


def _pip_install(build: Path, requirements: Sequence[str], *, deadline: float, say: Say, env: dict[str, str]) -> None:
    listing = build / REQUIREMENTS_FILE
    listing.write_text("\n".join(requirements) + "\n")
    argv = [
        sys.executable, "-m", "pip", "--python", str(build / "bin" / "python"), "install",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--no-warn-script-location",
        *settings.COURIER_PIP_OPTIONS, "-r", str(listing),
    ]
    outcome = run_streaming(argv, cwd=build, env=env, deadline=deadline, on_line=lambda _stream, text: say(f"pip: {text}"))
    if outcome.timed_out:
        raise VenvError("Installing the script's requirements did not finish before the task's timeout.")
    if outcome.returncode != 0:
        errors = [line for line in outcome.tail if line.startswith("ERROR")] or outcome.tail[-5:]
        text = "\n".join(outcome.tail)
        permanent = any(marker in text for marker in PERMANENT_PIP_ERRORS)
        raise VenvError(f"pip could not install the script's requirements (exit {outcome.returncode}): " + " ".join(errors), permanent=permanent)


def _relocate(build: Path, final: Path) -> None:
    """Point scripts pip wrote into bin/ (shebangs, activate) at the final folder instead of the build folder."""
    old, new = str(build).encode(), str(final).encode()
    for path in (build / "bin").iterdir():
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))
