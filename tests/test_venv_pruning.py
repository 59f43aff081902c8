"""Cached script environments no run used for COURIER_VENV_KEEP_DAYS are removed by prune_history (issue 16 item 8).

Environments are built by runs/venvs.py itself (no requirements: no pip, a
real venv); their last use is set back by the file's time, as days passing would.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import time

import pytest
from django.core.management import call_command

from runs import venvs

pytestmark = pytest.mark.django_db

DAY = 86400


@pytest.fixture
def venv_dir(settings, tmp_path):
    settings.COURIER_VENV_DIR = tmp_path / "venvs"
    settings.COURIER_VENV_KEEP_DAYS = 30
    return settings.COURIER_VENV_DIR


def built(days_unused: float, key: str | None = None) -> venvs.Environment:
    """A ready environment last used `days_unused` days ago; `key` copies the real one under another requirement key."""
    environment = venvs.ensure([], deadline=time.monotonic() + 60, say=lambda _msg: None, env=dict(os.environ))
    if key:
        copy = environment.path.with_name(key)
        shutil.copytree(environment.path, copy, symlinks=True)
        environment = venvs.Environment(copy, key, reused=False)
    then = time.time() - days_unused * DAY
    os.utime(environment.path / venvs.LAST_USED, (then, then))
    return environment


def prune_history() -> str:
    out = io.StringIO()
    call_command("prune_history", stdout=out)
    return out.getvalue()


def test_an_old_unused_environment_is_removed_and_a_recently_used_one_kept(venv_dir):
    recent = built(days_unused=29, key="cpython3-recent")
    old = built(days_unused=31)

    out = prune_history()

    assert not old.path.exists() and recent.python.exists()
    assert f"Removed 1 script environment(s) unused for 30 days\n  {old.key}" in out
    assert sorted(path.name for path in venv_dir.iterdir() if path.is_dir()) == ["cpython3-recent"]


def test_an_environment_being_built_is_kept(venv_dir):
    old = built(days_unused=31)
    # A run rebuilding this key holds its lock for as long as pip runs.
    with open(venv_dir / f"{old.key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = prune_history()
    assert old.python.exists()
    assert "Removed 0 script environment(s)" in out
    # Once the build is over, the next prune removes it.
    prune_history()
    assert not old.path.exists()


def test_an_environment_reused_by_a_run_counts_as_used_again(venv_dir):
    old = built(days_unused=31)
    reused = venvs.ensure([], deadline=time.monotonic() + 60, say=lambda _msg: None, env=dict(os.environ))
    assert reused.reused and reused.path == old.path
    prune_history()
    assert old.python.exists()
