"""The script sandbox (SPEC §8.1) against the real bubblewrap: what a script cannot reach, what it cannot leave behind.

Every test runs a Python-script task the way a worker does. The attacks are
the ones issue 13 reported: read Courier's database, `.env`, another run's
folder and the file storage; plant code in the cached environment; leave a
detached process or files in /tmp behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import sysconfig
import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from runs import sandbox
from runs.models import RunStatus
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories
from tests.processing_support import ProcessWatch, log_text, pid_alive, processes_with, run_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_pip")]

CANARY = f"canary-{uuid.uuid4().hex}"

READ_ATTEMPTS = """\
import os
for label, path in TARGETS.items():
    try:
        with open(path, "rb") as handle:
            print(label, "READ", handle.read(300))
    except OSError as exc:
        print(label, "REFUSED", type(exc).__name__)
print("work folder holds", sorted(os.listdir(WORK_DIR)))
"""


def python_task(script: str, name: str = "attack", **fields) -> Task:
    task = Task.objects.create(project=factories.project(name), name=name, source_kind="python", **fields)
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text=script)
    return task


@pytest.fixture(params=["var below /tmp", "var outside /tmp"])
def layout(request, settings, offline_pip):
    """The test settings keep COURIER_VAR_DIR below /tmp; a site keeps it elsewhere, and then the run folder is /tmp."""
    if request.param == "var outside /tmp":
        outside = Path(tempfile.mkdtemp(prefix="courier-sandbox-", dir="/var/tmp"))
        settings.COURIER_WORK_DIR = outside / "work"
        settings.COURIER_VENV_DIR = outside / "venvs"
        yield request.param
        shutil.rmtree(outside, ignore_errors=True)
    else:
        yield request.param


@pytest.fixture
def checkout_env_file():
    """The `.env` the settings read outside tests (the checkout's), with a canary; a developer's own one is left alone."""
    path = Path(settings.BASE_DIR) / ".env"
    if path.exists():
        yield path
        return
    path.write_text(f"SECRET_KEY={CANARY}\n")
    try:
        yield path
    finally:
        path.unlink()


def test_courier_database_env_other_runs_storage_and_environments_are_out_of_reach(layout, checkout_env_file):
    work = Path(settings.COURIER_WORK_DIR)
    other_run = work / "run-424242"
    other_run.mkdir(parents=True)
    (other_run / "orders.csv").write_text(CANARY)
    stored = default_storage.save(f"runs/{uuid.uuid4().hex}.csv", ContentFile(CANARY.encode()))
    other_env = Path(settings.COURIER_VENV_DIR) / "cpython311-other"
    other_env.mkdir(parents=True)
    (other_env / "pyvenv.cfg").write_text(CANARY)
    targets = {
        "database": connection.settings_dict["NAME"],
        "env-file": str(checkout_env_file),
        "checkout": str(Path(settings.BASE_DIR) / "manage.py"),
        "other-run": str(other_run / "orders.csv"),
        "storage": default_storage.path(stored),
        "other-environment": str(other_env / "pyvenv.cfg"),
    }
    for path in targets.values():
        assert Path(path).is_file(), path  # each is there for the worker to read
    script = f"TARGETS = {targets!r}\nWORK_DIR = {str(work)!r}\n{READ_ATTEMPTS}"
    run = run_task(python_task(script))

    assert run.status == RunStatus.SUCCEEDED, run.error
    log = log_text(run, "processing")
    for label in targets:
        assert f"{label} REFUSED FileNotFoundError" in log or f"{label} REFUSED PermissionError" in log, label
    assert " READ " not in log
    assert CANARY not in log and "run-424242" not in log
    assert f"work folder holds ['run-{run.pk}']" in log  # its own folder, nothing beside it


def test_system_files_only_the_worker_account_may_read_are_hidden():
    """The worker runs as root here, and the user namespace maps the script to root: modes alone would let it in."""
    private = [path for path in ("/etc/shadow", "/etc/ssh/ssh_host_ed25519_key") if os.path.exists(path)]
    if not private:
        pytest.skip("this machine has no root-only file under /etc to try")
    assert all(not os.stat(path).st_mode & 0o004 for path in private)
    script = f"TARGETS = {dict(zip(private, private))!r}\nWORK_DIR = '/tmp'\n{READ_ATTEMPTS}"
    run = run_task(python_task(script))

    assert run.status == RunStatus.SUCCEEDED, run.error
    log = log_text(run, "processing")
    for path in private:
        # An empty stand-in covers it: reading gives nothing, or is refused (device files on a bind are nodev).
        assert f"{path} READ b''" in log or f"{path} REFUSED" in log, log
    assert "root:" not in log and "PRIVATE KEY" not in log
    assert "/etc/passwd" in sandbox._system_mounts() or "/etc" in sandbox._system_mounts()  # the rest of /etc stays


def test_the_environment_and_the_python_it_runs_on_are_read_only(layout):
    base_marker = f"courier-planted-{uuid.uuid4().hex}.txt"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    script = (
        "import os, sys, sysconfig\n"
        "purelib = sysconfig.get_paths()['purelib']\n"
        "attempts = {\n"
        "    'pth': os.path.join(purelib, 'evil.pth'),\n"
        "    'sitecustomize': os.path.join(purelib, 'sitecustomize.py'),\n"
        "    'bin': os.path.join(sys.prefix, 'bin', 'pip'),\n"
        f"    'base-python': os.path.join(sysconfig.get_paths()['stdlib'], {base_marker!r}),\n"
        "}\n"
        "for label, path in attempts.items():\n"
        "    try:\n"
        "        open(path, 'w').write('print(1)')\n"
        "        print(label, 'WRITTEN')\n"
        "    except OSError as exc:\n"
        "        print(label, 'REFUSED', exc.strerror)\n"
    )
    try:
        run = run_task(python_task(script))
        assert run.status == RunStatus.SUCCEEDED, run.error
        log = log_text(run, "processing")
        for label in ("pth", "sitecustomize", "bin", "base-python"):
            assert f"{label} REFUSED Read-only file system" in log, label
        [environment] = [p for p in Path(settings.COURIER_VENV_DIR).iterdir() if p.is_dir()]
        assert not list(environment.rglob("evil.pth")) and not list(environment.rglob("sitecustomize.py"))
        assert not (environment / "bin" / "pip").exists()
    finally:
        planted = stdlib / base_marker
        if planted.exists():  # never leave it in the machine's Python, even when the test fails
            planted.unlink()
    assert not planted.exists()


PLANT_AND_LOOK = """\
import os, sys, sysconfig
purelib = sysconfig.get_paths()["purelib"]
plants = [os.path.join(purelib, "evil.pth"), os.path.join(purelib, "sitecustomize.py"),
          "/tmp/planted.txt", os.path.join(os.environ["HOME"], ".planted"), "/dev/shm/planted"]
for path in plants:
    if os.path.exists(path):
        print("FOUND", path)
    try:
        with open(path, "w") as handle:
            handle.write("import sys; print('PLANT RAN', file=sys.stderr)\\n")
        print("planted", path)
    except OSError as exc:
        print("could not plant", path, exc.strerror)
print("home is", os.environ["HOME"], "tmpdir is", os.environ["TMPDIR"], "cwd is", os.getcwd())
"""


def test_a_second_run_of_the_same_environment_finds_nothing_the_first_planted(layout):
    task = python_task(PLANT_AND_LOOK)
    first = run_task(task)
    second = run_task(task)

    for run in (first, second):
        assert run.status == RunStatus.SUCCEEDED, run.error
    first_log, second_log = log_text(first, "processing"), log_text(second, "processing")
    assert "planted /tmp/planted.txt" in first_log  # /tmp is writable …
    assert "could not plant" in first_log and "evil.pth Read-only file system" in first_log
    assert "Reusing environment" in second_log  # … the same environment …
    assert "FOUND" not in second_log and "PLANT RAN" not in second_log  # … and nothing of the first run is left
    workdir = Path(settings.COURIER_WORK_DIR) / f"run-{second.pk}"
    assert f"home is {workdir} tmpdir is {workdir} cwd is {workdir}" in second_log


def daemon_script(marker: str, hold_seconds: int) -> str:
    """Starts a detached grandchild (fork, setsid, fork) carrying `marker`, waits until it is up, then holds."""
    return (
        "import os, sys, time\n"
        "ready = os.path.abspath('daemon-ready')\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        code = 'import sys, time; open(sys.argv[1], \"w\").close(); time.sleep(600)'\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', code, ready, {marker!r}])\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "while not os.path.exists(ready):\n"
        "    time.sleep(0.01)\n"
        "print('the daemon is up', flush=True)\n"
        f"time.sleep({hold_seconds})\n"
    )


@pytest.fixture
def daemon_marker():
    """A word in the daemon's command line; a daemon that survived a failed test is ended afterwards."""
    marker = f"courier-daemon-{uuid.uuid4().hex}"
    yield marker
    for pid in processes_with(marker):
        os.kill(pid, signal.SIGKILL)


def test_a_detached_process_is_gone_when_the_run_ends(daemon_marker):
    marker = daemon_marker
    with ProcessWatch(marker) as watch:
        run = run_task(python_task(daemon_script(marker, hold_seconds=1)))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "the daemon is up" in log_text(run)
    assert watch.seen, "the daemon was never seen running"
    assert not any(pid_alive(pid) for pid in watch.seen)
    assert processes_with(marker) == []


def test_a_detached_process_is_gone_after_a_timeout(settings, daemon_marker):
    marker = daemon_marker
    settings.COURIER_TIMEOUT_MINUTE_SECONDS = 3  # the task's 1-minute timeout ends 3 s after its claim
    with ProcessWatch(marker) as watch:
        run = run_task(python_task(daemon_script(marker, hold_seconds=600), timeout_minutes=1))

    assert run.status == RunStatus.FAILED and run.error.startswith("Stopped by the task timeout of 1 minute in the processing stage")
    assert "the daemon is up" in log_text(run)
    assert watch.seen, "the daemon was never seen running"
    assert not any(pid_alive(pid) for pid in watch.seen)
    assert processes_with(marker) == []


def connect_script(port: int) -> str:
    return (
        "import socket\n"
        "try:\n"
        f"    with socket.create_connection(('127.0.0.1', {port}), timeout=5) as conn:\n"
        "        conn.sendall(b'hello from the script')\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('no connection:', type(exc).__name__)\n"
    )


@pytest.mark.parametrize("network", [True, False])
def test_the_task_option_switches_the_network_off(tcp_listener, network):
    port, received = tcp_listener
    run = run_task(python_task(connect_script(port), script_network=network))

    assert run.status == RunStatus.SUCCEEDED, run.error
    log = log_text(run, "processing")
    if network:
        assert "connected" in log and received == [b"hello from the script"]
    else:
        assert "no connection: ConnectionRefusedError" in log and received == []


def test_without_bwrap_the_script_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-folder"))
    run = run_task(python_task("print('the script ran')\n"))

    assert run.status == RunStatus.FAILED and run.permanent and run.error_stage == "processing"
    assert "“bwrap” was not found" in run.error and "bubblewrap" in run.error
    assert "COURIER_SCRIPT_SANDBOX=off" in run.error and "unsafe" in run.error
    assert "the script ran" not in log_text(run)


def test_a_bwrap_that_cannot_create_namespaces_refuses_the_script(tmp_path, monkeypatch):
    # As bwrap answers where unprivileged user namespaces are forbidden.
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create a new namespace' >&2\nexit 1\n")
    (folder / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    run = run_task(python_task("print('the script ran')\n"))

    assert run.status == RunStatus.FAILED and run.permanent
    assert "cannot create its namespaces" in run.error and "No permissions to create a new namespace" in run.error
    assert "COURIER_SCRIPT_SANDBOX=off" in run.error
    assert "the script ran" not in log_text(run)


def test_with_the_sandbox_off_scripts_run_with_a_warning_but_a_no_network_task_is_refused(settings, tmp_path):
    settings.COURIER_SCRIPT_SANDBOX = "off"
    # Unsandboxed, the script sees the worker's files: the very thing the sandbox prevents.
    visible = tmp_path / "visible.txt"
    visible.write_text("worker file")
    script = f"print(open({str(visible)!r}).read())\n"
    run = run_task(python_task(script))
    assert run.status == RunStatus.SUCCEEDED, run.error
    log = log_text(run, "processing")
    assert "sandbox is switched off" in log and "worker file" in log

    refused = run_task(python_task(script, name="offline", script_network=False))
    assert refused.status == RunStatus.FAILED and refused.permanent
    assert "may not use the network" in refused.error and "COURIER_SCRIPT_SANDBOX=off" in refused.error
    assert "worker file" not in log_text(refused)


@pytest.mark.parametrize("below_tmp", [True, False])
def test_the_sandbox_command_binds_only_the_system_python_environment_and_run_folder(tmp_path, below_tmp):
    base = tmp_path if below_tmp else Path(tempfile.mkdtemp(prefix="courier-sandbox-", dir="/var/tmp"))
    try:
        environment, workdir = base / "venvs" / "env", base / "work" / "run-1"
        (environment / "bin").mkdir(parents=True)
        workdir.mkdir(parents=True)
        (environment / "bin" / "python").symlink_to(Path(sysconfig.get_config_var("BINDIR")) / "python3")
        argv = sandbox.command("/usr/bin/bwrap", ["python", "x.py"], workdir=workdir, environment=environment, network=False)
        prefix = sandbox.interpreter_prefix(environment)
    finally:
        if not below_tmp:
            shutil.rmtree(base)

    sources = {argv[i + 1] for i, part in enumerate(argv) if part in ("--bind", "--ro-bind", "--ro-bind-try")}
    assert prefix == Path(sys.base_prefix).resolve()
    assert sources - {"/usr", "/etc", "/dev/null"} == {str(environment), str(workdir), str(prefix)} - {"/usr"}
    pairs = list(zip(argv, argv[1:], argv[2:]))
    assert ("--ro-bind", str(environment), str(environment)) in pairs and ("--bind", str(workdir), str(workdir)) in pairs
    # The run folder is /tmp too, unless it lies below /tmp: then /tmp is a private tmpfs.
    assert (("--tmpfs", "/tmp") in zip(argv, argv[1:])) == below_tmp
    assert (("--bind", str(workdir), "/tmp") in pairs) == (not below_tmp)
    assert "--unshare-net" in argv and argv[-3:] == ["--", "python", "x.py"]
