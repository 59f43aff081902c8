"""Processing-script overhead: Courier's processing stage in a cached environment vs plain `python script.py`.

    .venv/bin/python bench/processing.py [--repeat 10]

A Python-script task (no data source) whose script imports a small
third-party package (`tinybase`, a pure-Python wheel written here into an
offline wheelhouse, so pip needs no index: COURIER_PIP_OPTIONS) writes a file
and hands it back. The first run builds the task's environment (reported, not
part of the overhead); every later run reuses it. Each repeat measures:

- plain: `<that environment's python> script.py` started by this process
  (the same interpreter and packages, without Courier);
- plain in bwrap: the same command wrapped in the script sandbox
  (runs/sandbox.py: namespaces, mounts) — the sandbox's own cost;
- stage: Courier's processing stage (fetch the script, resolve the
  requirements, find the cached environment, run the script with the log
  streamed line by line, take the returned file), timed around the stage,
  once with the sandbox (the default) and once with COURIER_SCRIPT_SANDBOX=off;
- run: the whole run (claim, log, stages, hashing and storing the file).

The overhead is the median (sandboxed) stage time minus the median plain
time; the sandbox's overhead is the median sandboxed stage minus the median
unsandboxed one. Prints `RESULT name=value` lines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine, load  # noqa: E402

SCRIPT = """\
import sys
from pathlib import Path

import tinybase

out = Path("result.txt")
out.write_text(tinybase.shout("processed") + "\\n")
print("wrote", out)
print([str(out)])
"""
TARGET_S = 1.0
SANDBOX_TARGET_S = 0.2


def setup(wheels: Path) -> None:
    # Read by etlsite.settings at start-up: pip installs from the wheelhouse only.
    os.environ["COURIER_PIP_OPTIONS"] = f"--no-index --find-links {wheels}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from tests.processing_support import WHEELS, write_wheel

    wheels.mkdir()
    for (name, version), (modules, requires) in WHEELS.items():
        write_wheel(wheels, name, version, modules, requires)
    call_command("migrate", verbosity=0)


def make_task():
    from tasks.models import CodeLocation, CodeRole, Task
    from tests import factories

    task = Task.objects.create(project=factories.project(), name="script-only", source_kind="python", output_type="")
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text=SCRIPT)
    return task


class StageClock:
    """Times the processing stage inside the runner (it calls processing.run(ctx))."""

    def __init__(self) -> None:
        from runs import runner
        from runs.pipeline import processing

        self.seconds = 0.0
        self._real = processing.run
        # The runner holds its stages in one ordered tuple: the clock takes the processing stage's place there.
        runner.STAGES = tuple(self._timed if stage is processing.run else stage for stage in runner.STAGES)

    def _timed(self, ctx) -> None:
        started = time.perf_counter()
        self._real(ctx)
        self.seconds = time.perf_counter() - started


def courier_run(task, clock: StageClock) -> tuple[float, float]:
    from runs.runner import execute
    from runs.state import create_run

    run_id = create_run(task, "manual").pk
    started = time.perf_counter()
    run = execute(run_id)
    whole = time.perf_counter() - started
    if run.status != "succeeded":
        raise SystemExit(f"Courier run failed at {run.error_stage}: {run.error}")
    if run.files.get().stored.read() != b"PROCESSED!\n":
        raise SystemExit("The script's file did not arrive as written.")
    return clock.seconds, whole


def plain_run(python: Path, folder: Path, *, sandboxed: bool = False) -> float:
    from runs import sandbox

    script = folder / "script.py"
    script.write_text(SCRIPT)
    argv = [str(python), str(script)]
    if sandboxed:
        argv = sandbox.command(sandbox.locate(), argv, workdir=folder, environment=python.parent.parent, network=True)
    started = time.perf_counter()
    subprocess.run(argv, cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - started


def unsandboxed_run(task, clock: StageClock) -> tuple[float, float]:
    from django.conf import settings

    settings.COURIER_SCRIPT_SANDBOX = "off"
    try:
        return courier_run(task, clock)
    finally:
        settings.COURIER_SCRIPT_SANDBOX = "on"


def environment_python() -> Path:
    from django.conf import settings

    ready = [p for p in Path(settings.COURIER_VENV_DIR).iterdir() if (p / "courier-ready.json").is_file()]
    if len(ready) != 1:
        raise SystemExit(f"Expected one built environment, found {len(ready)}.")
    return ready[0] / "bin" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(describe_machine())
    work = Path(tempfile.mkdtemp(prefix="courier-bench-processing-"))
    try:
        setup(work / "wheels")
        task = make_task()
        clock = StageClock()
        build_stage, build_run = courier_run(task, clock)
        print(f"first run (builds the environment): stage {build_stage:.2f} s, run {build_run:.2f} s", flush=True)
        python = environment_python()
        plain, boxed, stage, open_stage, whole = [], [], [], [], []
        for _ in range(args.repeat):
            plain.append(plain_run(python, work))
            boxed.append(plain_run(python, work, sandboxed=True))
            seconds, total = courier_run(task, clock)
            stage.append(seconds)
            whole.append(total)
            open_stage.append(unsandboxed_run(task, clock)[0])
        print(f"plain python script.py:   median {statistics.median(plain):.3f} s (min {min(plain):.3f})")
        print(f"the same, in bwrap:       median {statistics.median(boxed):.3f} s (min {min(boxed):.3f})")
        print(f"processing stage:         median {statistics.median(stage):.3f} s (min {min(stage):.3f})")
        print(f"stage, sandbox off:       median {statistics.median(open_stage):.3f} s (min {min(open_stage):.3f})")
        print(f"whole run:                median {statistics.median(whole):.3f} s (min {min(whole):.3f})")
        print(f"load average after: {load()}")
    finally:
        from django.conf import settings

        var = Path(settings.VAR_DIR) if settings.configured else None
        shutil.rmtree(work, ignore_errors=True)
        if var is not None and var.name.startswith("courier-test-"):
            shutil.rmtree(var, ignore_errors=True)
    overhead = statistics.median(stage) - statistics.median(plain)
    sandbox_overhead = statistics.median(stage) - statistics.median(open_stage)
    print(f"overhead of the stage over plain python: {overhead:.3f} s (target ≤ {TARGET_S:.0f} s)")
    print(f"overhead of the sandbox per run: {sandbox_overhead:.3f} s (target ≤ {SANDBOX_TARGET_S} s); "
          f"bwrap around plain python: {statistics.median(boxed) - statistics.median(plain):.3f} s")
    print(f"RESULT environment_build_s={build_stage:.2f}")
    print(f"RESULT plain_python_s={statistics.median(plain):.3f}")
    print(f"RESULT processing_stage_s={statistics.median(stage):.3f}")
    print(f"RESULT whole_run_s={statistics.median(whole):.3f}")
    print(f"RESULT processing_overhead_s={overhead:.3f}")
    print(f"RESULT plain_python_in_bwrap_s={statistics.median(boxed):.3f}")
    print(f"RESULT processing_stage_unsandboxed_s={statistics.median(open_stage):.3f}")
    print(f"RESULT sandbox_overhead_s={sandbox_overhead:.3f}")


if __name__ == "__main__":
    main()
