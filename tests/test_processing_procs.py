"""Child processes of runs: lines streamed while the child runs, no shell, a deadline that ends the whole group."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from runs.procs import run_streaming


def run_python(code: str, *args: str, cwd: Path, seconds: float = 60, on_line=None):
    lines: list[tuple[str, str]] = []

    def record(stream: str, text: str) -> None:
        lines.append((stream, text))
        if on_line:
            on_line(stream, text)

    outcome = run_streaming(
        [sys.executable, "-u", "-c", code, *args], cwd=cwd, env={"PATH": "/usr/bin:/bin"},
        deadline=time.monotonic() + seconds, on_line=record,
    )
    return outcome, lines


def test_lines_arrive_while_the_child_is_still_running(tmp_path):
    # The child only goes on once the caller has seen its first line: if lines were
    # delivered at exit, it would wait until the deadline.
    flag = tmp_path / "seen"
    code = (
        "import os, sys, time\n"
        "print('first')\n"
        f"while not os.path.exists({str(flag)!r}):\n    time.sleep(0.01)\n"
        "print('second', file=sys.stderr)\n"
        "print('last')\n"
    )
    outcome, lines = run_python(code, cwd=tmp_path, seconds=30, on_line=lambda _s, text: text == "first" and flag.touch())

    assert not outcome.timed_out and outcome.returncode == 0
    # Within one stream the order holds; between stdout and stderr (two pipes) it cannot be promised.
    assert lines[0] == ("stdout", "first")
    assert sorted(lines[1:]) == [("stderr", "second"), ("stdout", "last")]
    assert outcome.last_stdout == "last"


def test_arguments_are_never_seen_by_a_shell(tmp_path):
    tricky = "$(touch pwned); `touch pwned2` | rm -rf x > out"
    outcome, lines = run_python("import sys; print(sys.argv[1])", tricky, cwd=tmp_path)

    assert outcome.returncode == 0
    assert lines == [("stdout", tricky)]
    assert list(tmp_path.iterdir()) == []


def test_stdin_is_empty_so_a_script_asking_for_input_fails_instead_of_hanging(tmp_path):
    outcome, lines = run_python("input('name? ')", cwd=tmp_path)
    assert outcome.returncode == 1 and not outcome.timed_out
    assert any("EOFError" in text for _stream, text in lines)


def test_exit_status_and_tail_are_reported(tmp_path):
    outcome, _lines = run_python("import sys\nfor i in range(30): print(i)\nsys.exit(3)", cwd=tmp_path)
    assert outcome.returncode == 3
    assert outcome.tail[-1] == "29" and len(outcome.tail) == 20


def test_a_child_that_closes_its_output_and_keeps_running_is_stopped_at_the_deadline(tmp_path):
    code = "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(600)\n"
    outcome, _lines = run_python(code, cwd=tmp_path, seconds=1)
    assert outcome.timed_out and outcome.returncode is None
