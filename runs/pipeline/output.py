"""The output stage: make each file final, hash exactly its bytes, keep it in file storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.core.files import File

from runs.models import RunFile
from runs.pipeline.context import LocalFile, RunContext
from runs.pipeline.errors import StageFailure

STAGE = "output"
CHUNK = 1024 * 1024


def file_digests(path: Path) -> tuple[int, str, str]:
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest(), sha256.hexdigest()


def store(ctx: RunContext, local: LocalFile) -> RunFile:
    size, md5, sha256 = file_digests(local.path)
    record = RunFile(run=ctx.run, name=local.name, size=size, rows=local.rows, md5=md5, sha256=sha256)
    try:
        with open(local.path, "rb") as fh:
            record.stored.save(local.name, File(fh), save=False)
        record.save()
    except OSError as exc:
        if record.stored.name:
            record.stored.storage.delete(record.stored.name)
        raise StageFailure(STAGE, f"Cannot keep {local.name} in Courier's file storage: {exc.strerror or exc}.") from None
    rows = "" if local.rows is None else f", {local.rows} rows"
    ctx.log.info(STAGE, f"Stored {local.name}: {size} bytes{rows}, md5 {md5}, sha256 {sha256}.")
    return record


def run(ctx: RunContext) -> list[RunFile]:
    if not ctx.files:
        ctx.log.info(STAGE, "No files to write.")
        return []
    return [store(ctx, local) for local in ctx.files]
