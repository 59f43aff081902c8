"""A processing script on local disk: one file, or the package it belongs to (SPEC §3.5, §3.7).

Without an entry file the code location is the script itself, read as text
(with the location's cache) by tasks/code.py. With an entry file the
location is a package, and its whole tree is fetched:

- SFTP / FTP / SMB: a folder (copied recursively) or a .zip/.tar archive;
- web URL or GitLab: a .zip/.tar archive, or a git repository — a URL ending
  in ``.git`` with the branch as fragment (``https://host/team/repo.git#main``)
  or, on GitLab, a project URL or its ``…/-/tree/<branch>`` page — cloned
  shallowly with the connection's token sent as an HTTP header (scoped to that
  host, never on the command line). The URL must be within the connection's
  base URL or GitLab instance, may not reach a local address, and git follows
  no redirect (curl would carry a custom token header to another host).

Packages are not cached: a failed fetch fails the run.
"""

from __future__ import annotations

import base64
import os
import posixpath
import shutil
import signal
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from connections.clients import ClientError, http
from connections.clients.addresses import refuse_local
from connections.kinds import client_for
from tasks import code as code_loading
from tasks.code import FILE_LOCATIONS, CodeError, code_client, code_location, describe, load_text
from tasks.models import CodeLocation, CodeLocationKind, CodeRole, Task

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
SKIPPED_NAMES = {".", "..", ".git", "__pycache__"}
MAX_FILES = 5000
MAX_DEPTH = 20
MAX_UNPACKED = 512 * 1024 * 1024
GIT_SECONDS = 600


@dataclass(frozen=True)
class Script:
    root: Path  # the package's top folder (a lone script's own folder)
    entry: Path  # the file to run
    package: bool


def fetch_script(task: Task, dest: Path, *, warn: Callable[[str], None] | None = None, seconds: float = GIT_SECONDS) -> Script:
    """Put the task's processing script (and its package, if it names an entry file) into `dest`."""
    code = code_location(task, CodeRole.PROCESSING)
    if code is None:
        raise CodeError("The task has no processing script.")
    dest.mkdir(parents=True, exist_ok=True)
    entry = task.processing_entry.strip()
    if not entry:
        text = load_text(task, CodeRole.PROCESSING, warn)
        if not text.strip():
            raise CodeError("The task's processing script is empty.")
        path = dest / _script_name(code)
        path.write_text(text, encoding="utf-8")
        return Script(dest, path, package=False)
    return fetch_package(code, entry, dest, seconds=seconds)


def _script_name(code: CodeLocation) -> str:
    source = "" if code.location == CodeLocationKind.INLINE else (code.path or urlsplit(code.url).path)
    name = PurePosixPath(source).name
    return name if name.endswith(".py") and len(name) > 3 else "script.py"


def fetch_package(code: CodeLocation, entry: str, dest: Path, *, seconds: float = GIT_SECONDS) -> Script:
    """Fetch the package at `code` into the empty folder `dest` and find `entry` in it."""
    relative = PurePosixPath(entry.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        raise CodeError(f"The entry file “{entry}” must be a path inside the package, without “..”.")
    if code.location == CodeLocationKind.INLINE:
        raise CodeError(
            f"An inline script is a single file, but the task names an entry file ({entry}). "
            "Clear the entry file, or point the processing script at a package folder, archive or git repository."
        )
    if code.location in FILE_LOCATIONS:
        if _is_archive(code.path):
            _extract(_fetch_bytes(code), PurePosixPath(code.path).name, dest)
        else:
            _download_tree(code, dest)
    elif _is_archive(urlsplit(code.url).path) or _is_archive(code.path):
        _extract(_fetch_bytes(code), PurePosixPath(urlsplit(code.url).path).name, dest)
    else:
        url, branch = git_source(code)
        clone(url, branch, dest, headers=_git_headers(code, url), verify=_verify(code), seconds=seconds)
    root = _package_root(dest, str(relative))
    target = root / relative
    if not target.is_file():
        found = ", ".join(sorted(p.name for p in root.iterdir() if p.name not in SKIPPED_NAMES)[:10]) or "nothing"
        raise CodeError(f"The package from {describe(code)} has no entry file {relative} (its top folder holds: {found}).")
    return Script(root, target, package=True)


def _fetch_bytes(code: CodeLocation) -> bytes:
    # The same fetch (connection checks, tokens, redirects) as a lone script's text.
    return code_loading._fetch_bytes(code)


def _is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def _package_root(dest: Path, entry: str) -> Path:
    """`dest`, or the one folder inside it when an archive wraps everything in one (as GitHub's do)."""
    if (dest / entry).is_file():
        return dest
    children = [c for c in dest.iterdir() if c.name not in SKIPPED_NAMES]
    if len(children) == 1 and children[0].is_dir() and (children[0] / entry).is_file():
        return children[0]
    return dest


# ----------------------------------------------------------------------------
# Folders on file servers


def _download_tree(code: CodeLocation, dest: Path) -> None:
    try:
        with code_client(code) as client:
            try:
                top = client.entries(code.path)
            except ClientError as exc:
                raise CodeError(
                    f"{exc} With an entry file set, the location must be a package folder, "
                    "a .zip/.tar archive or a git repository.", permanent=exc.permanent,
                ) from None
            copied = _copy_folder(client, code.path, top, dest, depth=0)
    except ClientError as exc:
        raise CodeError(str(exc), permanent=exc.permanent) from None
    if not copied:
        raise CodeError(f"The package folder {describe(code)} is empty.")


def _copy_folder(client, remote: str, entries: list, local: Path, depth: int, copied: int = 0) -> int:
    if depth > MAX_DEPTH:
        raise CodeError(f"The package folder is nested deeper than {MAX_DEPTH} levels at {remote}.")
    for entry in entries:
        if entry.name in SKIPPED_NAMES:
            continue
        if "/" in entry.name or "\\" in entry.name:
            raise CodeError(f"The server listed an unsafe name “{entry.name}” in {remote}.")
        path = posixpath.join(remote, entry.name)
        if entry.is_dir:
            (local / entry.name).mkdir()
            copied = _copy_folder(client, path, client.entries(path), local / entry.name, depth + 1, copied)
            continue
        copied += 1
        if copied > MAX_FILES:
            raise CodeError(f"The package folder holds more than {MAX_FILES} files; that is not a script package.")
        client.download(path, local / entry.name)
    return copied


# ----------------------------------------------------------------------------
# Archives


def _extract(data: bytes, name: str, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="courier-package-") as folder:
        archive = Path(folder) / "archive"
        archive.write_bytes(data)
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zipped:
                    _check_size(name, sum(i.file_size for i in zipped.infolist()))
                    # ZipFile.extractall drops absolute and ".." parts and writes no links.
                    zipped.extractall(dest)
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive) as tarred:
                    _check_size(name, sum(m.size for m in tarred.getmembers()))
                    # The "data" filter refuses paths and links leading outside dest, devices and setuid bits.
                    tarred.extractall(dest, filter="data")
            else:
                raise CodeError(f"{name} is neither a zip nor a tar archive.")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
            raise CodeError(f"The archive {name} cannot be unpacked: {exc}") from None
        except OSError as exc:
            raise CodeError(f"Unpacking {name} failed: {exc.strerror or exc}", permanent=False) from None


def _check_size(name: str, total: int) -> None:
    if total > MAX_UNPACKED:
        raise CodeError(f"The archive {name} unpacks to {total // (1024 * 1024)} MB; the limit is {MAX_UNPACKED // (1024 * 1024)} MB.")


# ----------------------------------------------------------------------------
# Git repositories


def git_source(code: CodeLocation) -> tuple[str, str]:
    """The clone URL and branch ("" for the default branch) of a web or GitLab package location."""
    parts = urlsplit(code.url.strip())
    if parts.scheme not in ("http", "https"):
        raise CodeError(f"“{http.shown(code.url)}” is not an http(s) URL.")
    path, branch = parts.path.rstrip("/"), parts.fragment
    if code.location == CodeLocationKind.GITLAB:
        project, marker, rest = path.partition("/-/")
        if marker:
            kind, _, ref = rest.partition("/")
            if kind != "tree" or not ref:
                raise CodeError(f"“{http.shown(code.url)}” is a GitLab file URL; a package needs the project or …/-/tree/<branch> URL, or an archive.")
            path, branch = project, branch or ref
        if not path.endswith(".git"):
            path += ".git"
    elif not path.endswith(".git"):
        raise CodeError(
            f"“{http.shown(code.url)}” is not a package: give a git repository URL ending in .git "
            "(branch after #, e.g. …/repo.git#main) or a .zip/.tar archive."
        )
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")), branch


def _git_headers(code: CodeLocation, url: str) -> dict[str, str]:
    """The connection's token for cloning `url`, which must be within the connection's base URL or GitLab instance."""
    conn = code.connection
    if conn is None:
        return {}
    if conn.kind != code.location:
        raise CodeError(f"“{conn}” is a {conn.get_kind_display()} connection; this package needs a {code.get_location_display()} connection.")
    problem = client_for(conn).scope_problem(url) if conn.token or conn.url else ""
    if problem:
        raise CodeError(problem)
    if not conn.token:
        return {}
    if code.location == CodeLocationKind.GITLAB:
        # GitLab's git-over-HTTPS takes a token as the password of Basic auth.
        return {"Authorization": "Basic " + base64.b64encode(f"oauth2:{conn.token}".encode()).decode()}
    return http.web_headers(conn)


def _verify(code: CodeLocation) -> bool:
    return code.connection.verify_tls if code.connection is not None else True


def _git_env(url: str, headers: dict[str, str], verify: bool) -> dict[str, str]:
    """Settings for this one clone, passed in the environment so no token shows in a process list."""
    parts = urlsplit(url)
    scope = f"http.{parts.scheme}://{parts.netloc}/."
    config = [(scope + "extraHeader", f"{name}: {value}") for name, value in headers.items()]
    if not verify:
        config.append((scope + "sslVerify", "false"))
    config.append(("http.followRedirects", "false"))
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL="http:https", GCM_INTERACTIVE="never")
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def clone(url: str, branch: str, dest: Path, *, headers: dict[str, str], verify: bool, seconds: float) -> None:
    """Clone the tip of `branch` into the empty folder `dest`."""
    try:
        refuse_local(url)
    except ClientError as exc:
        raise CodeError(str(exc), permanent=True) from None
    env = _git_env(url, headers, verify)
    options = ["--branch", branch] if branch else []
    error = _git(["clone", "--quiet", "--depth", "1", *options, "--", url, str(dest)], env, seconds)
    if error and "does not support shallow" in error:
        # A "dumb" HTTP server (static files) can only hand out the whole history.
        shutil.rmtree(dest, ignore_errors=True)
        error = _git(["clone", "--quiet", *options, "--", url, str(dest)], env, seconds)
    if error and "returned error: 30" in error:
        error += (" The server redirects; git follows no redirect here, so that a token never travels to another address:"
                  " give the repository's final URL.")
    if error:
        where = http.shown(url) + (f" (branch {branch})" if branch else "")
        permanent = any(s in error for s in ("not found", "Authentication failed", "403", "Remote branch", "redirects"))
        raise CodeError(f"git could not clone {where}: {error.replace(url, http.shown(url))}", permanent=permanent)


def _git(args: list[str], env: dict[str, str], seconds: float) -> str:
    """Run git in its own process group; the error text, or "" on success."""
    try:
        proc = subprocess.Popen(
            ["git", *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
    except FileNotFoundError:
        raise CodeError("git is not installed on this worker; a package from a git repository needs it.") from None
    try:
        _, stderr = proc.communicate(timeout=max(seconds, 1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise CodeError(f"git did not finish within {seconds:.0f} s.", permanent=False) from None
    if proc.returncode == 0:
        return ""
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return " ".join(lines[-3:]) or f"git exited with status {proc.returncode}."
