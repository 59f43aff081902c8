"""django-q2 entry points: a few lines each, the work lives in the pipeline and services.

django-q2 only delivers; arguments are plain ints so that its scheduler can
always parse them (SPEC §11).
"""

from __future__ import annotations

from runs.pipeline.runner import execute


def execute_run(run_id: int) -> str:
    run = execute(int(run_id))
    return "not claimed" if run is None else run.status
