"""The bubblewrap sandbox processing scripts run in (SPEC §8.1).

A script is untrusted code even when a trusted user wrote it: its
dependencies come from a package index. `command()` wraps the script's argv
in `bwrap` so that it runs in new user, PID and IPC namespaces and sees only:

- the system's files, read-only (/usr, /etc and the /bin, /lib… links);
- the Python its environment runs on and that environment, read-only;
- its run folder, read-write, at its own path (so the input paths, the
  working directory and the paths it hands back mean the same inside and
  out), which is also its HOME, TMPDIR and /tmp.

Courier's checkout, `.env` and COURIER_VAR_DIR (database, file storage, other
run folders, other environments) are simply not there. The run folder serves
as /tmp unless one of the bound folders lies below /tmp itself (a test
set-up, or a COURIER_VAR_DIR there): /tmp is then a private, empty tmpfs that
ends with the run, and only the bound folders are mounted inside it.

The script's process is not bwrap's first child: bwrap itself is the PID
namespace's init, and --die-with-parent kills it when the bwrap that Courier
started dies. When the script exits, or Courier's timeout kills that bwrap,
the namespace's init ends and the kernel kills every process left in the
namespace — including ones that called setsid() or forked twice.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings

BWRAP = "bwrap"
# Mounted read-only when they are real folders; on a merged-/usr system the
# top-level ones are symlinks into /usr and are re-created as such.
SYSTEM_FOLDERS = ("/usr", "/etc")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
TMP = Path("/tmp")
PROBE_SECONDS = 10
# bwrap paths whose namespaces have been shown to work in this process.
_working: set[str] = set()


class SandboxError(Exception):
    """The sandbox cannot be used here; scripts must not run (a permanent failure)."""


def required() -> bool:
    """False only when an administrator set COURIER_SCRIPT_SANDBOX=off."""
    return settings.COURIER_SCRIPT_SANDBOX == "on"


def locate() -> str:
    """The bwrap program on the worker's PATH, checked to create its namespaces here."""
    bwrap = shutil.which(BWRAP)
    if bwrap is None:
        raise SandboxError(
            "Processing scripts run in a sandbox (bubblewrap), but the program “bwrap” was not found on the worker's "
            "PATH, so the script was not run. Install the Debian package bubblewrap, or — unsafe: the script could then "
            "read Courier's database and keys — set COURIER_SCRIPT_SANDBOX=off."
        )
    if bwrap not in _working:
        _probe(bwrap)
        _working.add(bwrap)
    return bwrap


def _probe(bwrap: str) -> None:
    true = shutil.which("true", path="/usr/bin:/bin") or "/usr/bin/true"
    argv = [bwrap, *_namespaces(network=True), *_system_mounts(), "--", true]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_SECONDS, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
    else:
        if done.returncode == 0:
            return
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    raise SandboxError(
        f"Processing scripts run in a sandbox (bubblewrap), but {bwrap} cannot create its namespaces on this machine "
        f"({reason}), so the script was not run. Allow unprivileged user namespaces for the worker, or — unsafe: the "
        "script could then read Courier's database and keys — set COURIER_SCRIPT_SANDBOX=off."
    )


def interpreter_prefix(environment: Path) -> Path:
    """The installation the environment's python links to (sys.base_prefix as the script will see it)."""
    executable = Path(os.path.realpath(environment / "bin" / "python"))
    return executable.parent.parent


def command(bwrap: str, argv: Sequence[str], *, workdir: Path, environment: Path, network: bool) -> list[str]:
    """`argv` wrapped so that it runs in the sandbox described above."""
    workdir, environment = Path(os.path.realpath(workdir)), Path(os.path.realpath(environment))
    binds = [("--ro-bind", environment), ("--bind", workdir)]
    prefix = interpreter_prefix(environment)
    if not any(prefix.is_relative_to(folder) for folder in SYSTEM_FOLDERS):
        binds.append(("--ro-bind", prefix))
    # Parents before children: a later mount may land inside an earlier one, never over it.
    binds.sort(key=lambda bind: len(bind[1].parts))
    tmp_is_workdir = not any(path.is_relative_to(TMP) for _option, path in binds)
    return [
        bwrap, *_namespaces(network=network), *_system_mounts(),
        *(["--bind", str(workdir), str(TMP)] if tmp_is_workdir else ["--tmpfs", str(TMP)]),
        *[part for option, path in binds for part in (option, str(path), str(path))],
        *_resolver(),
        # Whatever is left of the sandbox's own root (the folders made for mount points) is not for writing.
        "--remount-ro", "/",
        "--chdir", str(workdir), "--setenv", "HOME", str(workdir), "--setenv", "TMPDIR", str(workdir),
        "--", *argv,
    ]


def _namespaces(*, network: bool) -> list[str]:
    flags = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
    return flags if network else [*flags, "--unshare-net"]


def _system_mounts() -> list[str]:
    mounts = []
    for folder in SYSTEM_FOLDERS:
        mounts += ["--ro-bind", folder, folder]
    mounts += _hidden_mounts()
    for path in SYSTEM_LINKS:
        if os.path.islink(path):
            mounts += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            mounts += ["--ro-bind", path, path]
    return [*mounts, "--proc", "/proc", "--dev", "/dev"]


def _hidden_mounts() -> list[str]:
    """Cover what the system folders hold that a script must not read.

    The worker may run as root, and a user namespace maps the script to the
    same account, so file modes alone do not keep it out of /etc/shadow or a
    key only root may read. Such files get an empty file over them, such
    folders an empty tmpfs. Courier's own folders, should they lie inside a
    system folder (a checkout under /usr/local, say), are hidden the same way.
    """
    mounts = []
    for path in _private_system_paths():
        mounts += ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
    for own in (settings.BASE_DIR, settings.VAR_DIR):
        own = os.path.realpath(own)
        if any(Path(own).is_relative_to(folder) for folder in SYSTEM_FOLDERS):
            mounts += ["--tmpfs", own]
    return mounts


@functools.cache
def _private_system_paths() -> tuple[str, ...]:
    # Walked once per worker process: /etc changes with package installs, not between runs.
    found = []
    for root, folders, files in os.walk("/etc"):
        for name in list(folders):
            path = os.path.join(root, name)
            if not os.path.islink(path) and not _world_readable(path, folder=True):
                found.append(path)
                folders.remove(name)  # covered whole
        found += [os.path.join(root, name) for name in files if not _world_readable(os.path.join(root, name), folder=False)]
    return tuple(found)


def _world_readable(path: str, *, folder: bool) -> bool:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return True
    if stat.S_ISLNK(mode):
        return True  # the target is judged where it lies
    wanted = stat.S_IROTH | (stat.S_IXOTH if folder else 0)
    return mode & wanted == wanted


def _resolver() -> list[str]:
    """Where /etc/resolv.conf links outside /etc and /usr (systemd-resolved's /run/…), that file too."""
    target = os.path.realpath("/etc/resolv.conf")
    if any(Path(target).is_relative_to(folder) for folder in SYSTEM_FOLDERS):
        return []
    return ["--ro-bind-try", target, target]
