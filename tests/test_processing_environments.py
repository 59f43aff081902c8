"""Script environments: dependencies installed from requirements or imports, cached, locked, never half-built.

pip installs from a wheelhouse written by the test session (tests/processing_support.py), never from an index.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from runs import venvs
from runs.models import RunStatus
from runs.pipeline.script_env import worker_environment
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories
from tests.processing_support import log_text, run_task

pytestmark = pytest.mark.usefixtures("offline_pip")

USES_TINYFMT = "import tinyfmt\nopen('out.txt', 'w').write(tinyfmt.fmt('hi'))\nprint(['out.txt'])\n"


def python_task(script: str, name: str = "pyonly", **fields) -> Task:
    task = Task.objects.create(project=factories.project(), name=name, source_kind="python", **fields)
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text=script)
    return task


def outbox(task: Task, tmp_path: Path) -> Path:
    folder = tmp_path / f"outbox-{task.name}"
    folder.mkdir()
    factories.destination(task, factories.connection("folder", name=f"box-{task.name}", folder=str(folder)))
    return folder


def environments(venv_dir: Path) -> list[Path]:
    return sorted(p for p in venv_dir.iterdir() if p.is_dir())


@pytest.mark.django_db
def test_requirements_field_installs_with_dependencies_and_a_second_run_installs_nothing(tmp_path, offline_pip):
    task = python_task(USES_TINYFMT, processing_requirements="tinyfmt==1.0\n# the formatter\n")
    box = outbox(task, tmp_path)

    first = run_task(task)
    assert first.status == RunStatus.SUCCEEDED, first.error
    assert (box / "out.txt").read_text() == "<HI!>"
    log = log_text(first, "processing")
    assert "Requirements (from the task's requirements field): tinyfmt==1.0." in log
    assert "Successfully installed tinybase-1.0 tinyfmt-1.0" in log  # the dependency came along
    [env] = environments(offline_pip)
    marker = (env / venvs.READY).stat().st_mtime_ns
    python = (env / "bin" / "python").stat().st_mtime_ns

    (box / "out.txt").unlink()
    second = run_task(task)
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert (box / "out.txt").read_text() == "<HI!>"
    log = log_text(second, "processing")
    assert f"Reusing environment {env.name}; nothing to install." in log
    assert "pip:" not in log and "Building" not in log
    assert environments(offline_pip) == [env]
    assert (env / venvs.READY).stat().st_mtime_ns == marker
    assert (env / "bin" / "python").stat().st_mtime_ns == python


@pytest.mark.django_db
def test_imports_decide_the_requirements_when_nothing_is_declared(tmp_path):
    script = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "import yaml\n"
        "from tinyfmt import fmt\n"
        "try:\n    import ujson\nexcept ImportError:\n    ujson = None\n"
        "Path('out.txt').write_text(fmt('x') + ' ' + yaml.safe_dump(1) + ' ' + str(ujson))\n"
        "print(['out.txt'])\n"
    )
    task = python_task(script)
    box = outbox(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (box / "out.txt").read_text() == "<X!> yaml:1 None"
    log = log_text(run, "processing")
    # yaml is provided by PyYAML; the optional ujson import and the standard library are left alone.
    assert "Requirements (from the script's imports): pyyaml, tinyfmt." in log
    assert "Successfully installed pyyaml-99.0 tinybase-1.0 tinyfmt-1.0" in log


@pytest.mark.django_db
def test_a_failed_install_fails_the_run_with_pips_message_and_leaves_no_environment(offline_pip):
    task = python_task("print('never runs')\n", processing_requirements="tinyfmt\nno-such-dist>=1\n")
    run = run_task(task)

    assert run.status == RunStatus.FAILED
    assert run.error_stage == "processing" and run.permanent
    assert "pip could not install" in run.error and "no-such-dist" in run.error
    assert "No matching distribution found" in run.error
    assert "never runs" not in log_text(run)
    assert environments(offline_pip) == []  # neither a cached env nor a build folder is left
    # The next run tries again from scratch rather than trusting a broken cache.
    assert "pip could not install" in run_task(task).error


@pytest.mark.django_db
def test_unknown_import_failure_suggests_the_requirements_field():
    run = run_task(python_task("import courier_private_helpers\n"))
    assert run.status == RunStatus.FAILED
    assert "courier-private-helpers" in run.error and "requirements field" in run.error


def test_concurrent_builds_of_one_environment_build_it_once(offline_pip):
    messages: list[str] = []
    results: list[venvs.Environment] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(venvs.ensure(["tinyfmt"], deadline=time.monotonic() + 120, say=messages.append, env=worker_environment()))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({r.path for r in results}) == 1
    assert sum(m.startswith("Building environment") for m in messages) == 1
    assert sorted(r.reused for r in results) == [False, True, True]
    assert environments(offline_pip) == [results[0].path]


def test_the_environment_key_follows_the_requirement_set_not_its_spelling():
    from runs.requirements import normalize

    same = [normalize(["PyYAML", "tinyfmt==1.0"]), normalize(["tinyfmt==1.0", "pyyaml", "PyYAML"]), normalize([" tinyfmt==1.0 ", "PYYAML"])]
    assert len({venvs.environment_key(r) for r in same}) == 1
    assert venvs.environment_key(normalize(["tinyfmt==1.0"])) != venvs.environment_key(normalize(["tinyfmt==1.1"]))
    assert venvs.environment_key(()) != venvs.environment_key(normalize(["tinyfmt"]))


def test_pip_options_come_from_the_setting(settings, offline_pip):
    # Without the wheelhouse pip finds nothing: the install really goes through COURIER_PIP_OPTIONS.
    settings.COURIER_PIP_OPTIONS = ["--no-index"]
    with pytest.raises(venvs.VenvError, match="No matching distribution"):
        venvs.ensure(["tinyfmt"], deadline=time.monotonic() + 120, say=lambda _m: None, env=worker_environment())
