"""The output stage: name, encrypt, zip, then hash exactly the final bytes and keep them in file storage.

Order matters (SPEC §3.8): names first; GPG encrypts each file before
zipping; hashes are taken of what will be delivered, after both. The
stored copy is what a retry or a resend sends again, so its hash is checked
before it leaves.

An empty file (no data rows for table output, zero bytes otherwise) is left
out of the zip when every destination of the task is set not to send empty
files; if every file is empty nothing is zipped, stored or sent, and the log
says so. Without a zip, empty files are stored and each destination decides.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
import zipfile
from pathlib import Path

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.utils import timezone

from connections.clients.gpg import GpgError, encrypt_file
from runs.models import RunFile, Stage
from runs.pipeline import naming
from runs.pipeline.context import LocalFile, RunContext
from runs.pipeline.errors import StageFailure

STAGE = Stage.OUTPUT
CHUNK = 1024 * 1024


def file_digests(path: Path) -> tuple[int, str, str]:
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest(), sha256.hexdigest()


def is_empty(local: LocalFile) -> bool:
    """Empty for table output means no data rows (header excluded); for other files, zero bytes."""
    return local.rows == 0 if local.rows is not None else local.path.stat().st_size == 0


def _describe_rows(rows: int | None) -> str:
    return "" if rows is None else f", {rows} row{'s' if rows != 1 else ''}"


# --------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------

def name_files(ctx: RunContext) -> None:
    names = naming.final_names(ctx.task, [(f.name, f.rows is not None) for f in ctx.files], ctx.params, ctx.at)
    for local, name in zip(ctx.files, names, strict=True):
        if name != local.name:
            ctx.log.info(STAGE, f"{local.name} is delivered as {name}.")
            local.name = name


def empty_files_unwanted(ctx: RunContext) -> bool:
    destinations = list(ctx.task.destinations.all())
    return bool(destinations) and all(d.skip_empty for d in destinations)


def encrypt(ctx: RunContext) -> None:
    key = ctx.task.gpg_key
    if key.expires_at and key.expires_at <= timezone.now():
        raise StageFailure(STAGE, f"The GPG key “{key.name}” ({key.fingerprint}) expired on {key.expires_at:%Y-%m-%d}; nothing was encrypted or sent.", permanent=True)
    folder = ctx.workdir / "encrypted"
    folder.mkdir(exist_ok=True)
    encrypted = []
    for local in ctx.files:
        name = naming.encrypted_name(local.name, ctx.task.gpg_armor)
        target = folder / name
        try:
            encrypt_file(key.public_key, local.path, target, armor=ctx.task.gpg_armor)
        except (GpgError, OSError) as exc:
            raise StageFailure(STAGE, f"{local.name} cannot be encrypted for “{key.name}”: {exc}", permanent=True) from None
        ctx.log.info(STAGE, f"Encrypted {local.name} for GPG key “{key.name}” ({key.fingerprint}) as {name}.")
        encrypted.append(LocalFile(path=target, name=name, rows=local.rows))
    ctx.files = encrypted


def _zip_rows(members: list[LocalFile]) -> int | None:
    """Data rows in the archive: the sum when every member's is known; 0 marks an archive of empty files."""
    if all(m.rows is not None for m in members):
        return sum(m.rows for m in members)
    return 0 if all(is_empty(m) for m in members) else None


def make_zip(ctx: RunContext) -> None:
    name = naming.zip_file_name(ctx.task, ctx.params, ctx.at)
    path = ctx.workdir / "zip" / name
    path.parent.mkdir(exist_ok=True)
    # Encrypted data does not compress; storing it saves the work.
    method = zipfile.ZIP_STORED if ctx.task.gpg_key_id else zipfile.ZIP_DEFLATED
    try:
        with zipfile.ZipFile(path, "w", compression=method, allowZip64=True) as archive:
            for member in ctx.files:
                archive.write(member.path, arcname=member.name)
    except OSError as exc:
        raise StageFailure(STAGE, f"The zip archive {name} cannot be written: {exc.strerror or exc}.") from None
    ctx.log.info(STAGE, f"Zipped {len(ctx.files)} file(s) into {name}: {', '.join(m.name for m in ctx.files)}.")
    ctx.files = [LocalFile(path=path, name=name, rows=_zip_rows(ctx.files))]


def leave_out_empty(ctx: RunContext) -> None:
    """Before zipping: drop empty files when no destination wants them."""
    kept = []
    for local in ctx.files:
        if is_empty(local):
            ctx.log.info(STAGE, f"{local.name} is empty and no destination takes empty files: it is not zipped or sent.")
        else:
            kept.append(local)
    ctx.files = kept


def store(ctx: RunContext, local: LocalFile) -> RunFile:
    size, md5, sha256 = file_digests(local.path)
    record = RunFile(run=ctx.run, name=local.name, size=size, rows=local.rows, md5=md5, sha256=sha256)
    try:
        with open(local.path, "rb") as fh:
            record.stored.save(local.name, File(fh), save=False)
        record.save()
    except OSError as exc:
        discard_unrecorded(record)
        raise StageFailure(STAGE, f"Cannot keep {local.name} in Courier's file storage: {exc.strerror or exc}.") from None
    ctx.log.info(STAGE, f"Stored {local.name}: {size} bytes{_describe_rows(local.rows)}, md5 {md5}, sha256 {sha256}.")
    return record


def discard_unrecorded(record: RunFile) -> None:
    """Remove what a failed save left in the run's storage folder.

    Django's FileSystemStorage writes straight under the final name, so a disk
    that fills up part way leaves a partial file there, whose name the failed
    save never returned. The run's folder holds only this run's files: any
    file in it that no RunFile records is such a remnant.
    """
    storage = record.stored.storage
    folder = posixpath.dirname(record.stored.field.generate_filename(record, "file"))
    recorded = set(RunFile.objects.filter(run_id=record.run_id).values_list("stored", flat=True))
    try:
        names = storage.listdir(folder)[1]
    except (OSError, NotImplementedError):
        return
    for name in names:
        path = f"{folder}/{name}"
        if path not in recorded:
            try:
                storage.delete(path)
            except OSError:
                pass  # the failure being reported matters more than this remnant


def run(ctx: RunContext) -> None:
    """Make the files final and store them in `ctx.stored`; `ctx.files[i]` is the local copy of `ctx.stored[i]`."""
    if not ctx.files:
        ctx.log.info(STAGE, "No files to write.")
        return
    name_files(ctx)
    zipping = ctx.task.zip_enabled
    if zipping and empty_files_unwanted(ctx):
        leave_out_empty(ctx)
        if not ctx.files:
            ctx.log.info(STAGE, "Every output file is empty: nothing is zipped, stored or sent.")
            return
    if ctx.task.gpg_key_id:
        encrypt(ctx)
    if zipping:
        make_zip(ctx)
    ctx.stored = [store(ctx, local) for local in ctx.files]


# --------------------------------------------------------------------------
# Reading a stored file back (retries and resends send the stored copy)
# --------------------------------------------------------------------------

def _outside_storage(record: RunFile) -> str:
    return (f"The stored copy of {record.name} (run {record.run_id}) is recorded at a path outside Courier's file storage; "
            "it is not read or sent.")


def _gone(record: RunFile) -> str:
    return f"The stored copy of {record.name} (run {record.run_id}) is gone; it may have been pruned."


def stored_problem(record: RunFile) -> str | None:
    """Why the stored copy cannot be sent, seen without reading it (its size and hash are checked when it is fetched)."""
    try:
        present = bool(record.stored) and record.stored.storage.exists(record.stored.name)
    except SuspiciousFileOperation:
        return _outside_storage(record)
    return None if present else _gone(record)


def fetch_stored(record: RunFile, folder: Path) -> Path:
    """Copy a stored file into `folder` and check it is still exactly what was recorded."""
    # Only the last part of the recorded name: a name holding folders must not lead out of `folder`.
    target = folder / f"{record.pk}-{Path(record.name).name}"
    try:
        with record.stored.open("rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
    except SuspiciousFileOperation:
        raise StageFailure(Stage.DELIVERY, _outside_storage(record), permanent=True) from None
    except (FileNotFoundError, ValueError):
        raise StageFailure(Stage.DELIVERY, _gone(record), permanent=True) from None
    except OSError as exc:
        raise StageFailure(Stage.DELIVERY, f"The stored copy of {record.name} cannot be read: {exc.strerror or exc}.") from None
    size, md5, sha256 = file_digests(target)
    if (size, sha256) != (record.size, record.sha256):
        target.unlink(missing_ok=True)
        raise StageFailure(
            Stage.DELIVERY, f"The stored copy of {record.name} no longer matches its recorded size and SHA-256; it is not sent.", permanent=True,
        )
    return target
