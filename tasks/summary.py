"""Every setting of a task in words, for Task Details. Secrets never appear: only connection names."""

from __future__ import annotations

from connections.kinds import Reads
from connections.masking import MASK, mask_url
from tasks.code import code_location
from tasks.models import CodeLocation, CodeLocationKind, CodeRole, Notification, NotificationEvent, Task

Section = tuple[str, list[tuple[str, str]]]


def _yes(flag: bool, yes: str, no: str) -> str:
    return yes if flag else no


def _code(code: CodeLocation | None, what: str) -> str:
    if code is None:
        return f"No {what}."
    if code.location == CodeLocationKind.INLINE:
        lines = code.text.count("\n") + 1 if code.text else 0
        return f"Written on this page ({lines} line{'s' if lines != 1 else ''}); shown below."
    where = code.path or mask_url(code.url)
    via = f" through {code.connection}" if code.connection_id else ""
    cache = " A copy is cached for when a fetch fails." if code.cache else ""
    return f"Fetched from {code.get_location_display()}{via}: {where}.{cache}"


def general(task: Task) -> Section:
    retries = "No retries."
    if task.retry_max:
        backoff = f", each further wait ×{task.retry_backoff:g}" if task.retry_backoff != 1 else ""
        which = "every failure" if task.retry_on_every_failure else "failures that a retry can fix"
        retries = f"Up to {task.retry_max} retries of {which}, the first after {task.retry_delay_minutes} min{backoff}."
    rank = "no run rank" if task.rank is None else f"run rank {task.rank}"
    return ("General", [
        ("Project", f"{task.project.name} (owner {task.project.owner.username}"
                    f"{', who gets a daily digest' if task.project.owner_digest else ''}), {rank}."),
        ("State", _yes(task.enabled, "Enabled: runs when the project fires.", "Disabled: runs only when started by hand.")),
        ("Timeout", f"The whole run is stopped after {task.timeout_minutes} min."),
        ("Retries", retries),
        ("Expected by", f"Should have succeeded by {task.expected_by:%H:%M} ({task.project.timezone}) on the days its project fires; "
                        "a late alert goes out otherwise." if task.expected_by else "No expected time: no late alert."),
        ("Runs after", _dependencies(task)),
    ])


def _dependencies(task: Task) -> str:
    # tasks/views.py asks in the task's own query whether there are any (most tasks have none).
    after = [str(other) for other in task.wait_for.select_related("project")] if getattr(task, "runs_after_others", True) else []
    if not after:
        return "No other task: a scheduled run starts at once."
    span = (f"intended within {task.wait_window_minutes} min of its own" if task.wait_window_minutes is not None
            else "intended the same day")
    return (f"A scheduled run waits until {', '.join(sorted(after))} succeeded ({span}); "
            f"it gives up {task.wait_deadline_minutes} min after its intended time.")


def source(task: Task) -> Section:
    reads = task.source_reads
    lines = [("Kind", task.get_source_kind_display())]
    if task.source_connection_id:
        lines.append(("Connection", str(task.source_connection)))
    if reads == Reads.QUERY:
        lines.append(("Query", _code(code_location(task, CodeRole.SOURCE), "query")))
        lines.append(("Rows", _yes(task.source_headers, "Column names become the header row.", "No header row from the query.")))
    elif reads == Reads.FILES:
        lines.append(("Files", f"Every file matching {task.source_path}"
                      + _yes(task.source_missing_ok, "; no match is fine.", "; no match fails the run.")))
        lines.append(("Reading", f"Read as text delimited by “{task.source_delimiter}” and re-written."
                      if task.source_delimiter else "Passed on byte for byte."))
    elif reads == Reads.COMMAND:
        lines.append(("Command", _code(code_location(task, CodeRole.SOURCE), "command")))
        lines.append(("Output", _yes(task.source_stdout_as_file, "Standard output becomes the file.", "Standard output goes to the log only.")))
    return ("Data source", lines)


def processing(task: Task) -> Section:
    code = code_location(task, CodeRole.PROCESSING)
    lines = [("Script", _code(code, "processing script"))]
    if code is not None and task.processing_entry:
        lines.append(("Entry file", task.processing_entry))
    if code is not None:
        lines.append(("Requirements", ", ".join(task.processing_requirements.split()) or "From the package or the script's imports."))
        lines.append(("Network", _yes(task.script_network, "The script may use the network.", "The script runs without network access.")))
    return ("Processing", lines)


def row_guard(task: Task) -> Section:
    checks = []
    if task.source_fail_on_empty:
        checks.append("no rows")
    if task.guard_min_rows is not None:
        checks.append(f"fewer than {task.guard_min_rows} rows")
    if task.guard_max_rows is not None:
        checks.append(f"more than {task.guard_max_rows} rows")
    if task.guard_median_runs:
        checks.append(f"more than {task.guard_median_percent} % above or below the median of the last {task.guard_median_runs} successful runs")
    if not checks:
        return ("Row guard", [("Checks", "None: any number of rows is delivered.")])
    return ("Row guard", [("Broken by", "; ".join(checks).capitalize() + "."),
                          ("Then", task.get_guard_action_display() + ".")])


def output(task: Task) -> Section:
    if not task.output_type:
        kind = "Source files are kept as they are"
    else:
        kind = task.get_output_type_display()
    lines = [("Type", kind), ("Name", task.output_name or (f"the task's name ({task.name})" if task.output_type else "source names"))]
    if task.output_type in ("csv", "text"):
        delimiter = {"\\t": "tab", "\t": "tab"}.get(task.output_delimiter, f"“{task.output_delimiter}”")
        lines.append(("Format", (f"Delimited by {delimiter}; " if task.output_type == "text" else "")
                      + f"{_yes(task.output_headers, 'header row', 'no header row')}; quoting {task.get_output_quoting_display().lower()}; "
                      f"{task.get_output_encoding_display()}; {task.get_output_line_ending_display()} line ends"
                      + (f"; “{task.output_line_suffix}” at each line end." if task.output_line_suffix else ".")))
    packing = []
    if task.gpg_key_id:
        packing.append(f"encrypted for GPG key {task.gpg_key.name}" + _yes(task.gpg_armor, " (ASCII armour)", ""))
    if task.zip_enabled:
        packing.append(f"zipped into {task.zip_name}")
    lines.append(("Packing", ", then ".join(packing).capitalize() + "." if packing else "No encryption, no zip."))
    return ("Output file", lines)


def destinations(task: Task) -> Section:
    lines = []
    for dest in task.destinations.all():
        empty = "; empty files are not sent" if dest.skip_empty else ""
        where = f"{dest.connection} → {dest.folder or 'its base folder'}"
        done = ""
        if dest.done_file:
            done = f"; then the done file {dest.done_file}" + _yes(dest.done_manifest, " with a manifest (name,size,sha256)", " (empty)")
        lines.append((dest.get_kind_display(), f"{where}; if the file exists: {dest.get_if_exists_display().lower()}{empty}{done}."))
    return ("Destinations", lines or [("None", "Files are kept in Courier's file storage only.")])


def _email(note: Notification) -> str:
    extras = []
    if note.event == NotificationEvent.SUCCESS:
        extras += [word for flag, word in ((note.attach, "files attached"), (note.embed, "output embedded as a table"),
                                           (note.skip_empty, "not sent for empty output")) if flag]
    else:
        if note.after_failures > 1:
            extras.append(f"only after {note.after_failures} runs in a row failed for good")
        if note.recovered:
            extras.append("a “recovered” mail on the next success")
    subject = f"subject “{note.subject}”" if note.subject else "the default subject"
    return f"To {note.recipients.strip()}, {subject}" + (f"; {', '.join(extras)}." if extras else ".")


def emails(task: Task) -> Section:
    notes = {n.event: n for n in task.notifications.all()}
    return ("Emails", [
        (label, _email(notes[event]) if event in notes else "No email.")
        for event, label in ((NotificationEvent.SUCCESS, "On success"), (NotificationEvent.FAILURE, "On failure"))
    ])


def parameters(task: Task) -> Section:
    own = {p.key.lower() for p in task.parameters.all()}
    lines = [(p.key, MASK if p.sensitive else p.value) for p in task.parameters.all()]
    lines += [(p.key, f"{MASK if p.sensitive else p.value} (from the project)")
              for p in task.project.parameters.all() if p.key.lower() not in own]
    return ("Parameters", lines or [("None", "No parameters.")])


def summary(task: Task) -> list[Section]:
    """Needs the task loaded as tasks/views.py `detail_queryset` loads it (no query per line)."""
    return [general(task), source(task), processing(task), row_guard(task), output(task), destinations(task), emails(task),
            parameters(task)]
