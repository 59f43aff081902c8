"""Scripts from every kind of code location: lone files, and packages (a folder, a zip or tar archive, a git repository)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from runs.models import RunStatus
from tasks.code import CodeError
from tasks.models import CodeLocation, CodeRole, Task
from tasks.packages import git_source
from tests import factories
from tests.file_servers import mkdirs, put
from tests.processing_support import log_text, run_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def environments(settings, offline_pip, session_venvs):
    # These tests are about fetching packages: build the tinyfmt environment once for all of them.
    settings.COURIER_VENV_DIR = session_venvs
    # The web and git servers listen on 127.0.0.1 (SPEC §8.2 refuses that by default).
    settings.COURIER_ALLOW_LOCAL_URLS = True

# A package: an entry file that imports a local module, reads a data file beside it and needs tinyfmt.
PACKAGE = {
    "jobs/main.py": (
        "from pathlib import Path\n"
        "import helpers\n"
        "here = Path(__file__).parent\n"
        "Path('result.txt').write_text(helpers.greet((here / 'data' / 'name.txt').read_text().strip()))\n"
        "print(['result.txt'])\n"
    ),
    "jobs/helpers.py": "from tinyfmt import fmt\n\n\ndef greet(name):\n    return fmt(name)\n",
    "jobs/data/name.txt": "ann\n",
    "requirements.txt": "tinyfmt\n",
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    # put() leaves them readable by the daemons' login user (the tests' own umask is Courier's 077).
    mkdirs(root.parent, root.name)
    for name, text in files.items():
        put(root, name, text.encode())


def zip_bytes(files: dict[str, str], prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(prefix + name, text)
    return buffer.getvalue()


def tar_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def package_task(location: str, *, entry: str = "jobs/main.py", connection=None, path: str = "", url: str = "", name: str = "pkg") -> tuple[Task, Path]:
    task = Task.objects.create(project=factories.project(), name=name, source_kind="python", processing_entry=entry)
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location=location, connection=connection, path=path, url=url)
    return task


def delivered(task: Task, tmp_path: Path) -> Path:
    box = tmp_path / "outbox"
    box.mkdir()
    factories.destination(task, factories.connection("folder", name="outbox", folder=str(box)))
    return box


def assert_package_ran(run, box: Path) -> None:
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (box / "result.txt").read_text() == "<ANN!>"
    log = log_text(run, "processing")
    assert "entry file jobs/main.py" in log
    assert "Requirements (from requirements.txt): tinyfmt." in log


LONE_SCRIPT = "import sys\nfrom pathlib import Path\nPath('lone.txt').write_text(Path(sys.argv[0]).name)\nprint(['lone.txt'])\n"


def test_a_lone_script_on_sftp_keeps_its_file_name(sshd, tmp_path):
    put(sshd.root, "lone_job.py", LONE_SCRIPT.encode())
    task = package_task("sftp", connection=factories.sftp_connection(sshd), path="lone_job.py", entry="")
    box = delivered(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (box / "lone.txt").read_text() == "lone_job.py"


def test_a_lone_script_from_a_web_url(http_server, tmp_path):
    (http_server.root / "web_job.py").write_text(LONE_SCRIPT)
    task = package_task("web", url=f"{http_server.url}/web_job.py", entry="")
    box = delivered(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (box / "lone.txt").read_text() == "web_job.py"


def test_a_package_folder_on_sftp(sshd, tmp_path):
    folder = sshd.root / "pkg-folder"
    write_tree(folder, PACKAGE)
    task = package_task("sftp", connection=factories.sftp_connection(sshd), path="pkg-folder")
    box = delivered(task, tmp_path)
    assert_package_ran(run_task(task), box)


def test_a_tar_archive_on_sftp(sshd, tmp_path):
    put(sshd.root, "pkg.tar.gz", tar_bytes(PACKAGE))
    task = package_task("sftp", connection=factories.sftp_connection(sshd), path="pkg.tar.gz")
    box = delivered(task, tmp_path)
    assert_package_ran(run_task(task), box)


def test_a_package_folder_on_ftp(ftp_server, tmp_path):
    write_tree(ftp_server.root / "pkg", PACKAGE)
    conn = factories.connection("ftp", host=ftp_server.host, port=ftp_server.port, username=ftp_server.username, password=ftp_server.password)
    task = package_task("ftp", connection=conn, path="pkg")
    box = delivered(task, tmp_path)
    assert_package_ran(run_task(task), box)


def test_a_zip_from_a_web_url_with_one_wrapping_folder_and_a_token(http_server, tmp_path):
    # Archives made from a repository page wrap everything in one folder; the entry is found inside it.
    (http_server.root / "pkg.zip").write_bytes(zip_bytes(PACKAGE, prefix="job-main/"))
    conn = factories.connection("web", name="web", url=http_server.url, token="web-Canary-77")
    task = package_task("web", connection=conn, url=f"{http_server.url}/pkg.zip")
    box = delivered(task, tmp_path)

    assert_package_ran(run_task(task), box)
    assert http_server.received[0].headers["Authorization"] == "Bearer web-Canary-77"


def test_a_git_repository_branch_is_cloned_shallowly_with_the_token(git_server, tmp_path):
    shows_branch = (
        "from pathlib import Path\n"
        "import helpers\n"
        "shallow = (Path(__file__).parent / '.git' / 'shallow').exists()\n"
        "Path('result.txt').write_text(helpers.WHICH + ' shallow=' + str(shallow))\n"
        "print(['result.txt'])\n"
    )
    url = git_server.add_repo("job", {
        "main": {"main.py": shows_branch, "helpers.py": "WHICH = 'main'\n"},
        "release/2024": {"helpers.py": "WHICH = 'release'\n"},
    })
    conn = factories.connection("web", name="git-host", url=git_server.url, header="Authorization", token="Bearer git-Canary-55")
    task = package_task("web", connection=conn, url=f"{url}#release/2024", entry="main.py")
    box = delivered(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (box / "result.txt").read_text() == "release shallow=True"
    assert git_server.headers and all(h.get("Authorization") == "Bearer git-Canary-55" for h in git_server.headers)
    assert "git-Canary-55" not in log_text(run)


def test_a_missing_branch_fails_the_run_naming_it(git_server):
    url = git_server.add_repo("job2", {"main": {"main.py": "print(1)\n"}})
    run = run_task(package_task("web", url=f"{url}#no-such-branch", entry="main.py"))

    assert run.status == RunStatus.FAILED and run.error_stage == "processing"
    assert "git could not clone" in run.error and "no-such-branch" in run.error


def test_a_missing_entry_file_fails_listing_what_is_there(sshd):
    folder = sshd.root / "pkg-no-entry"
    write_tree(folder, {"other.py": "", "README.md": ""})
    run = run_task(package_task("sftp", connection=factories.sftp_connection(sshd), path="pkg-no-entry", entry="main.py"))

    assert run.status == RunStatus.FAILED
    assert "has no entry file main.py" in run.error and "README.md, other.py" in run.error


def test_an_entry_file_with_an_inline_script_is_refused():
    run = run_task(package_task("inline", entry="main.py"))
    assert run.status == RunStatus.FAILED
    assert "An inline script is a single file" in run.error


def test_an_entry_may_not_leave_the_package(sshd):
    run = run_task(package_task("sftp", connection=factories.sftp_connection(sshd), path="x", entry="../main.py"))
    assert run.status == RunStatus.FAILED and "without “..”" in run.error


def test_a_web_page_is_not_a_package(http_server):
    run = run_task(package_task("web", url=f"{http_server.url}/index.html", entry="main.py"))
    assert run.status == RunStatus.FAILED
    assert "give a git repository URL ending in .git" in run.error


@pytest.mark.parametrize(("url", "expected"), [
    ("https://gitlab.example.com/team/job", ("https://gitlab.example.com/team/job.git", "")),
    ("https://gitlab.example.com/team/job.git#stable", ("https://gitlab.example.com/team/job.git", "stable")),
    ("https://gitlab.example.com/team/job/-/tree/release/2024", ("https://gitlab.example.com/team/job.git", "release/2024")),
])
def test_gitlab_project_and_tree_urls_name_the_repository_and_branch(url, expected):
    assert git_source(CodeLocation(location="gitlab", url=url)) == expected


def test_a_gitlab_file_url_is_not_a_package():
    with pytest.raises(CodeError, match="GitLab file URL"):
        git_source(CodeLocation(location="gitlab", url="https://gitlab.example.com/team/job/-/blob/main/main.py"))
