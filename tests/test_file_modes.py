"""Courier's own files are readable by its account only (SPEC §8.2).

The database, `.env`, the file storage, run folders and the var folder are
created 0600/0700 whatever umask Courier was started with; files delivered to
a local-folder destination belong to whoever reads that folder and keep the
modes the service's starting umask gives them.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from runs.models import RunStatus
from tasks.models import CodeLocation, CodeRole
from tests import factories
from tests.processing_support import log_text, run_task

BASE_DIR = Path(__file__).resolve().parent.parent
GROUP_AND_OTHERS = 0o077


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_database_and_var_folder_are_private(tmp_path):
    var = tmp_path / "var"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "etlsite.settings", "COURIER_ENV_FILE": "/dev/null",
           "COURIER_VAR_DIR": str(var), "SECRET_KEY": "x", "COURIER_SECRET_KEYS": settings.COURIER_SECRET_KEYS[0]}
    for name in ("DATABASE_URL", "COURIER_STORAGE_DIR", "COURIER_WORK_DIR", "COURIER_VENV_DIR", "COURIER_FOLDER_UMASK"):
        env.pop(name, None)

    # Started the way a shell usually starts it: umask 022 would make every new file 0644.
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env,
                   umask=0o022, check=True, timeout=300)

    assert mode(var) == 0o700
    assert mode(var / "courier.sqlite3") == 0o600


def test_ensure_env_writes_a_private_env_file(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(BASE_DIR / "scripts" / "ensure-env.sh", checkout / "scripts")
    (checkout / ".venv").symlink_to(sys.prefix)

    subprocess.run(["bash", str(checkout / "scripts" / "ensure-env.sh")], umask=0o022, check=True, timeout=60,
                   capture_output=True)

    assert "COURIER_SECRET_KEYS=" in (checkout / ".env").read_text()
    assert mode(checkout / ".env") == 0o600


# The script reports the modes of its run folder (its working directory), of
# the folder Courier wrote its input into and of that file, then hands it on.
REPORTING_SCRIPT = """\
import os, sys
from pathlib import Path
source = Path(sys.argv[1])
modes = [oct(os.stat(path).st_mode & 0o777) for path in (Path.cwd(), source.parent, source)]
print("run folder {} output folder {} input {}".format(*modes))
print([str(source)])
"""


@pytest.mark.django_db
@pytest.mark.usefixtures("offline_pip")
def test_a_runs_files_are_private_and_a_local_delivery_keeps_the_usual_modes(sqlite_odbc, tmp_path, settings):
    settings.COURIER_FOLDER_UMASK = 0o022
    task = factories.query_task(factories.project(), factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc),
                                "select 1 as one", output_name="one.csv")
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text=REPORTING_SCRIPT)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    factories.destination(task, factories.connection("folder", name="outbox", folder=str(outbox)), folder="daily/in")

    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "run folder 0o700 output folder 0o700 input 0o600" in log_text(run, "processing")
    stored = Path(run.files.get().stored.path)
    assert mode(stored) == 0o600
    storage_root = Path(settings.COURIER_STORAGE_DIR)
    for folder in [stored.parent, *stored.parent.parents]:
        if folder == storage_root.parent:
            break
        assert mode(folder) & GROUP_AND_OTHERS == 0, folder
    assert mode(Path(settings.COURIER_WORK_DIR)) & GROUP_AND_OTHERS == 0
    # Not Courier's: the vendor's pick-up folder gets what the service's starting umask (022) gives.
    assert mode(outbox / "daily") == mode(outbox / "daily" / "in") == 0o755
    assert mode(outbox / "daily" / "in" / "one.csv") == 0o644
