"""What a killed worker leaves behind is ended and removed: its script's processes, its run's work folder.

The worker here is a plain process that starts a run's child the way the
runner does (runs/procs.py) and is then SIGKILLed. A script in the sandbox
takes its whole PID namespace with it (tests/test_cluster_embedded.py shows
that in a real cluster); these are the unsandboxed cases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from runs import reaper
from runs.models import Run, RunStatus
from runs.state import create_run
from tests import factories
from tests.processing_support import pid_alive, processes_with

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent

# A stand-in worker: starts `python -c SCRIPT MARKER` as a run's child and waits; it is killed meanwhile.
WORKER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from runs.procs import RUN_MARKER, run_streaming
    script, marker, run_id = sys.argv[2:5]
    run_streaming([sys.executable, "-c", script, marker], cwd=Path("/tmp"),
                  env={"PATH": "/usr/bin:/bin", RUN_MARKER: run_id}, deadline=time.monotonic() + 600,
                  on_line=lambda stream, text: print(text, flush=True))
""")
# The script starts a grandchild in a session of its own (out of its process group), then both wait.
SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(600)", sys.argv[1] + "-grandchild"])
    print("started", flush=True)
    time.sleep(600)
""")


def wait_until(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    return condition()


@pytest.fixture
def lost_run(sqlite_odbc):
    conn = factories.connection("database", name="src", dialect="sqlite", odbc=sqlite_odbc.odbc)
    run = create_run(factories.query_task(factories.project(), conn, "select 1 as n"), "manual")
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    return run


def test_a_killed_workers_script_dies_at_once_and_the_reaper_ends_what_it_started_and_removes_its_folder(lost_run, settings, tmp_path):
    settings.COURIER_WORK_DIR = tmp_path / "work"
    folder = settings.COURIER_WORK_DIR / f"run-{lost_run.pk}"
    (folder / "out").mkdir(parents=True)
    marker = f"courier-lost-{uuid.uuid4().hex}"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(ROOT), SCRIPT, marker, str(lost_run.pk)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "started"
        grandchild = wait_until(lambda: processes_with(f"{marker}-grandchild"))
        script = [pid for pid in processes_with(marker) if pid != worker.pid and pid not in grandchild]
        assert len(script) == 1 and len(grandchild) == 1
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()

    # The script itself dies with its worker, at once.
    assert wait_until(lambda: not any(pid_alive(pid) for pid in script), 5), "the script outlived its worker"
    # While the run is still "running", the reaper leaves its processes and folder alone.
    assert reaper.kill_stray_processes() == {} and reaper.sweep_work_folders() == []
    assert all(pid_alive(pid) for pid in grandchild) and folder.is_dir()

    Run.objects.filter(pk=lost_run.pk).update(status=RunStatus.FAILED)  # reaped: "worker lost"
    assert reaper.kill_stray_processes() == {lost_run.pk: grandchild}
    assert reaper.sweep_work_folders() == [folder]
    assert wait_until(lambda: not any(pid_alive(pid) for pid in grandchild), 5)
    assert not folder.exists()
