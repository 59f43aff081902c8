"""The SSH command source (real sshd) and the Python-script-only source."""

from __future__ import annotations

import pytest

from runs.models import RunStatus
from runs.runner import execute
from runs.state import create_run
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories
from tests.file_servers import put

pytestmark = pytest.mark.django_db


def ssh_task(conn, command: str, **fields) -> Task:
    task = Task.objects.create(project=factories.project(), name="remote", source_kind="ssh", source_connection=conn, **fields)
    CodeLocation.objects.create(task=task, role=CodeRole.SOURCE, location="inline", text=command)
    return task


def ssh_conn(server, **overrides):
    fields = dict(host=server.host, port=server.port, username=server.username, password=server.password,
                  host_key=server.host_key_line)
    fields.update(overrides)
    return factories.connection("ssh", **fields)


def run_task(task):
    run = create_run(task, "manual")
    execute(run.pk)
    run.refresh_from_db()
    return run


def lines(run, stage="source") -> list[str]:
    return list(run.log_lines.filter(stage=stage).values_list("message", flat=True))


def test_command_output_goes_to_the_log(sshd):
    run = run_task(ssh_task(ssh_conn(sshd), "echo started; echo 'a warning' >&2; id -un"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    logged = lines(run)
    assert "stdout: started" in logged and f"stdout: {sshd.username}" in logged
    assert "stderr: a warning" in logged
    assert "The command ended with exit status 0." in logged
    assert run.files.count() == 0


def test_non_zero_exit_fails_the_run(sshd):
    run = run_task(ssh_task(ssh_conn(sshd), "echo 'disk full' >&2; exit 4"))
    assert run.status == RunStatus.FAILED
    assert run.error == f"The command on {run.task.source_connection} ended with exit status 4."
    assert "stderr: disk full" in lines(run)


def test_stdout_kept_as_the_output_file_byte_for_byte(sshd):
    conn = ssh_conn(sshd, password="", private_key=sshd.client_private_key_text)
    put(sshd.root, "export.bin", bytes(range(256)))
    task = ssh_task(conn, f"cat {sshd.root}/export.bin", source_stdout_as_file=True, output_type="keep", output_name="export_%Y.bin")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    record = run.files.get()
    assert record.name == f"export_{run.intended_at:%Y}.bin"
    assert record.stored.read() == bytes(range(256))
    assert not any(m.startswith("stdout:") for m in lines(run))


def test_command_from_a_code_location_on_sftp(sshd):
    put(sshd.root, "jobs/nightly.sh", b"echo from-sftp\n")
    sftp = factories.sftp_connection(sshd, folder=str(sshd.root))
    task = ssh_task(ssh_conn(sshd), "")
    CodeLocation.objects.filter(task=task).update(location="sftp", connection=sftp, path="jobs/nightly.sh")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "stdout: from-sftp" in lines(run)


def test_changed_host_key_refuses_to_run(sshd):
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    run = run_task(ssh_task(ssh_conn(sshd, host_key=other), "touch /tmp/should-not-run"))
    assert run.status == RunStatus.FAILED
    assert "does not match the key pinned" in run.error and run.permanent


def test_python_only_source_makes_no_files_and_needs_a_script():
    task = Task.objects.create(project=factories.project(), name="script", source_kind="python")
    run = run_task(task)
    assert run.status == RunStatus.FAILED
    assert "needs a processing script" in run.error

    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text="print('[]')")
    run = run_task(task)
    assert "No data source: the processing script makes the data." in lines(run)
    assert run.files.count() == 0
