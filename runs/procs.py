"""Child processes for runs: no shell, their own process group, every line streamed, a hard deadline.

Used for processing scripts and for the pip installs that prepare their
environments. The child leads a new session, so a timeout ends the whole
group — grandchildren a script started included — not just the first process.

Nothing a run started outlives its worker either. The child is killed by the
kernel the moment the worker dies (a parent-death signal), and a script in the
sandbox takes its whole PID namespace with it (runs/sandbox.py). What an
unsandboxed script left behind carries its run's number in RUN_MARKER, and
the reaper ends it once that run no longer runs (`stray_processes`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# After SIGTERM the group gets this long to exit before SIGKILL.
TERM_GRACE_SECONDS = 3.0
# How long to wait for the last buffered lines once the group is gone.
DRAIN_SECONDS = 2.0
# Longest line read in one piece (a long list of returned paths must stay whole);
# a stream without newlines is cut into pieces of this size rather than filling memory.
MAX_LINE = 4 * 1024 * 1024
TAIL_LINES = 20

OnLine = Callable[[str, str], None]

# In the environment of a run's child processes (and so of their children): the run's number.
RUN_MARKER = "COURIER_RUN_ID"
# util-linux's setpriv (always there on Debian) execs the child with a parent-death signal:
# the kernel kills it when the worker thread that started it dies. (A preexec_fn could do
# the same, but is unsafe in a process with threads.)
SETPRIV = shutil.which("setpriv")


def dies_with_worker(argv: Sequence[str]) -> list[str]:
    return [SETPRIV, "--pdeathsig", "KILL", "--", *argv] if SETPRIV else list(argv)


def stray_processes(still_running: Callable[[set[int]], set[int]]) -> dict[int, list[int]]:
    """This machine's processes that carry a run's marker, by run, for runs `still_running` does not name.

    `still_running(run ids)` returns those of the given runs that still run.
    """
    by_run: dict[int, list[int]] = {}
    marker = f"{RUN_MARKER}=".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                found = [v for v in environ.read().split(b"\0") if v.startswith(marker)]
        except OSError:
            continue  # gone, or not ours to read
        if found and found[0][len(marker):].isdigit():
            by_run.setdefault(int(found[0][len(marker):]), []).append(int(entry.name))
    running = still_running(set(by_run)) if by_run else set()
    return {run: pids for run, pids in by_run.items() if run not in running}


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class Outcome:
    returncode: int | None
    timed_out: bool
    last_stdout: str = ""
    # The last lines of both streams, for a failure message.
    tail: list[str] = field(default_factory=list)


def _pump(stream: IO[bytes], name: str, lines: queue.Queue) -> None:
    try:
        for raw in iter(lambda: stream.readline(MAX_LINE), b""):
            lines.put((name, raw.decode("utf-8", errors="replace").rstrip("\r\n")))
    finally:
        lines.put((name, None))


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left of it."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=TERM_GRACE_SECONDS)
    # Members that ignored SIGTERM, or outlived the leader.
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # ProcessLookupError: the group is already gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Reader:
    """Collects the lines of both pipes on the calling thread, so logging (and its database writes) stays there."""

    def __init__(self, proc: subprocess.Popen, on_line: OnLine) -> None:
        self.on_line = on_line
        self.lines: queue.Queue = queue.Queue()
        self.open = 2
        self.last_stdout = ""
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
            threading.Thread(target=_pump, args=(stream, name, self.lines), daemon=True).start()

    def take(self, timeout: float) -> bool:
        """Handle one line; False if none came within `timeout`."""
        try:
            name, text = self.lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return False
        if text is None:
            self.open -= 1
            return True
        if name == "stdout" and text.strip():
            self.last_stdout = text
        self.tail.append(text)
        self.on_line(name, text)
        return True


def run_streaming(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    deadline: float,
    on_line: OnLine,
) -> Outcome:
    """Run `argv` until it exits or `deadline` (time.monotonic()) passes.

    `on_line(stream, text)` gets every stdout/stderr line as it arrives.
    """
    proc = subprocess.Popen(
        dies_with_worker(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    reader = _Reader(proc, on_line)
    timed_out = False
    try:
        while reader.open:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not reader.take(min(remaining, 1.0)):
                if proc.poll() is not None:
                    break  # the script is done; something it left behind holds the pipes
        if not timed_out:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                timed_out = True  # it closed its output but kept running
    finally:
        # Always end the group: nothing a run started may outlive it.
        kill_group(proc)
    drain_until = time.monotonic() + DRAIN_SECONDS
    while reader.open and reader.take(drain_until - time.monotonic()):
        pass
    if not reader.open:
        proc.stdout.close()
        proc.stderr.close()
    return Outcome(None if timed_out else proc.returncode, timed_out, reader.last_stdout, list(reader.tail))
