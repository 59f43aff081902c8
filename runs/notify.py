"""Success and failure mails (and email-to-SMS texts) after a run, through Django's mail backend.

Both are follow-ups (runs/followups.py), so they run after the run's
outcome is saved: an SMTP server that is down costs the mail, never the run.
Each mail sent is a Delivery of kind "email" with its status and error.

- Recipients are separated by `;`, `,` or new lines. An address whose local
  part is a phone number (`5551234567@vtext.com`) belongs to an email-to-SMS
  gateway: it gets its own plain-text mail holding only the configured
  message (or a short default), no subject, no HTML, no attachment.
- Subjects and messages may use parameters and date patterns. Every text
  of a mail (subject, plain text, HTML) is masked before it is sent
  (connections/masking.py): sensitive values, connection secrets and
  Courier's own keys, also inside file names. Attachments are delivered
  files: they keep their names and bytes.
- The failure mail is sent only when no retry follows (SPEC §3.9): the retry
  step (runs/retries.py) runs before it in `followups.STEPS`, and a
  scheduled retry shows as the run's next attempt. It waits, too, until as
  many runs in a row as the task says have failed for good (quiet alerts,
  runs/streaks.py); a run whose failure mail went out is marked, so that the
  next success can send "recovered" (runs/alerts.py).
- Mails are rendered from templates/emails/<kind>-subject.html,
  -body-text.html and -body-html.html.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass, field
from email import encoders
from email.mime.base import MIMEBase
from email.utils import parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from connections.masking import Masker
from connections.secrets import SecretError
from projects.parameters import Param, ParameterError, substitute
from runs.models import Delivery, DeliveryKind, DeliveryStatus, Run, RunFile, RunStatus, Stage
from runs.pipeline.context import intended_time, load_parameters
from runs.pipeline.log import RunLogger
from runs.pipeline.mailtable import read_table
from runs.pipeline.redelivery import output_files
from runs.retries import why_not
from runs.state import next_attempt
from runs.streaks import failure_streak
from tasks.masking import task_masker
from tasks.models import Notification, NotificationEvent

STAGE = Stage.NOTIFY
LOG_TAIL = 15
logger = logging.getLogger(__name__)
_SEPARATORS = re.compile(r"[;,\r\n]+")
_PHONE_PUNCTUATION = re.compile(r"[\s().+-]")


@dataclass
class Recipients:
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def is_phone(address: str) -> bool:
    """True for an email-to-SMS gateway address: the local part is a phone number."""
    digits = _PHONE_PUNCTUATION.sub("", address.rsplit("@", 1)[0])
    return digits.isdigit() and 7 <= len(digits) <= 15


def split_recipients(text: str) -> Recipients:
    result = Recipients()
    seen: set[str] = set()
    for item in _SEPARATORS.split(text or ""):
        address = parseaddr(item.strip())[1] if item.strip() else ""
        if not item.strip() or address.lower() in seen:
            continue
        try:
            validate_email(address)
        except ValidationError:
            result.invalid.append(item.strip())
            continue
        seen.add(address.lower())
        (result.phones if is_phone(address) else result.emails).append(address)
    return result


# --------------------------------------------------------------------------
# What a mail says
# --------------------------------------------------------------------------

@dataclass
class MailContext:
    run: Run
    log: RunLogger
    params: list[Param]
    values: dict = field(default_factory=dict)

    def fill(self, text: str) -> str:
        """Parameters and dates in a subject or message, masked before a template can reflow it."""
        try:
            text = substitute(text, self.params, intended_time(self.run, self.run.task))
        except ParameterError as exc:
            self.log.warning(STAGE, f"Parameters in the mail text cannot be filled in ({exc}); it is sent as written.")
        return self.log.mask(text)


def _run_url(run: Run) -> str:
    return settings.COURIER_BASE_URL.rstrip("/") + reverse("admin:runs_run_change", args=[run.pk])


def mail_params(run: Run, log: RunLogger) -> list[Param]:
    """The run's parameters; the log's masker then hides every secret of the task (tasks/masking.py).

    A secret that cannot be read is an error, logged; the mail still goes
    (it may be the one saying so) with its parameters left as written, so no
    value is filled in that the masker does not know.
    """
    try:
        params = load_parameters(run.task, intended_time(run, run.task))
        log.masker = task_masker(run.task, params)
    except (ParameterError, SecretError) as exc:
        log.error(STAGE, f"The parameters cannot be read for the mail ({exc}); they are left as written.")
        return []
    return params


def base_values(run: Run) -> dict:
    task = run.task
    owner = task.project.owner
    times = {"started": run.started_at, "finished": run.finished_at, "intended": run.intended_at}
    return {
        "run": run, "task": task, "project": task.project,
        "owner": owner.get_full_name() or owner.get_username(), "owner_email": owner.email,
        "attempt": run.attempt, "attempts": task.retry_max + 1,
        "when": {k: _when(run, v) for k, v in times.items()},
        "duration": f"{run.duration.total_seconds():.1f} s" if run.duration else "",
        "run_url": _run_url(run),
        "stage": Stage(run.error_stage).label if run.error_stage else "",
        "uploads": list(run.deliveries.filter(kind=DeliveryKind.UPLOAD).select_related("file")),
    }


def _when(run: Run, value, pattern: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """A time as the project sees it (its time zone), already formatted: templates would use the site's zone."""
    return timezone.localtime(value, intended_time(run, run.task).tzinfo).strftime(pattern) if value else ""


def log_tail(run: Run) -> list[str]:
    lines = list(run.log_lines.order_by("-id")[:LOG_TAIL])[::-1]
    return [f"{_when(run, line.at, '%H:%M:%S')} {line.level.upper():7} [{line.stage}] {line.message}" for line in lines]


def retry_plan(run: Run) -> dict:
    """Whether a retry follows, when, and if not, why not (runs/retries.py decides; this only reports)."""
    retry = next_attempt(run)
    if retry is not None:
        return {"will_retry": True, "at": _when(run, retry.due_at), "next": retry.attempt}
    return {"will_retry": False, "reason": why_not(run) or "no retry is scheduled"}


# --------------------------------------------------------------------------
# Building and sending
# --------------------------------------------------------------------------

def render(kind: str, values: dict) -> tuple[str, str, str]:
    subject = render_to_string(f"emails/{kind}-subject.html", values).strip()
    text = render_to_string(f"emails/{kind}-body-text.html", values)
    html = render_to_string(f"emails/{kind}-body-html.html", values)
    return " ".join(subject.split()), text, html


def _attach(message: EmailMultiAlternatives, files: list[RunFile], skip_empty: bool, values: dict) -> None:
    budget = settings.COURIER_EMAIL_ATTACH_LIMIT
    left_out = values.setdefault("not_attached", [])
    for record in files:
        if skip_empty and record.is_empty:
            left_out.append((record.name, "empty"))
        elif record.size > budget:
            left_out.append((record.name, f"over the {filesizeformat(settings.COURIER_EMAIL_ATTACH_LIMIT)} attachment limit"))
        else:
            message.attach(_binary_attachment(record))
            budget -= record.size


def _binary_attachment(record: RunFile) -> MIMEBase:
    """The stored bytes, base64-encoded: a text/* part would have its line endings rewritten in transit."""
    main, sub = (mimetypes.guess_type(record.name)[0] or "application/octet-stream").split("/", 1)
    part = MIMEBase(main, sub)
    with record.stored.open("rb") as fh:
        part.set_payload(fh.read())
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=record.name)
    return part


def _embed(run: Run, files: list[RunFile], values: dict) -> None:
    limit = settings.COURIER_EMAIL_EMBED_LIMIT
    values["tables"] = tables = []
    for record in files:
        try:
            table = read_table(run.task, record, limit)
        except Exception as exc:  # noqa: BLE001 - a table that cannot be read must not cost the mail
            logger.warning("Run %s: %s cannot be embedded: %s", run.pk, record.name, exc)
            tables.append({"name": record.name, "note": "not shown: it cannot be read as a table"})
            continue
        tables.append(table)
        limit -= sum(sum(len(v) for v in row) for row in table.rows)


def _output_is_empty(run: Run, files: list[RunFile]) -> bool:
    return all(f.is_empty for f in files) if files else not run.rows


def _record(run: Run, target: str) -> Delivery:
    return Delivery.objects.create(run=run, kind=DeliveryKind.EMAIL, target=target[:1000])


def _masked(message: EmailMultiAlternatives, masker: Masker) -> None:
    """Every text of the mail masked; attachments are delivered files and keep their names and bytes."""
    message.subject = masker.mask(message.subject)
    message.body = masker.mask(message.body)
    alternatives, message.alternatives = message.alternatives, []
    for content, mimetype in alternatives:
        message.attach_alternative(masker.mask(content), mimetype)


def send_message(mc: MailContext, message: EmailMultiAlternatives, target: str) -> bool:
    _masked(message, mc.log.masker)
    record = _record(mc.run, target)
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - SMTP, DNS, TLS and socket errors all mean "not sent"
        error = mc.log.mask(f"{type(exc).__name__}: {exc}")
        record.status, record.error = DeliveryStatus.FAILED, error
        mc.log.error(STAGE, f"The {target} could not be sent: {error}")
    else:
        record.status = DeliveryStatus.SENT
        mc.log.info(STAGE, f"Sent the {target}.")
    record.at = timezone.now()
    record.save(update_fields=["status", "error", "at"])
    return record.status == DeliveryStatus.SENT


def _text_message(mc: MailContext, kind: str, notification: Notification, phones: list[str], connection) -> bool:
    if notification.message.strip() and notification.event == kind:
        body = mc.fill(notification.message)
    else:
        body = render_to_string(f"emails/{kind}-sms-text.html", mc.values).strip()
    message = EmailMultiAlternatives(subject="", body=body + "\n", to=phones, connection=connection)
    return send_message(mc, message, f"{kind} text to {', '.join(phones)}")


def notify(run: Run, log: RunLogger, kind: str, extra: dict | None = None, *, notification: Notification | None = None) -> bool:
    """Send the `kind` mail (templates emails/<kind>-*) to the notification's recipients; True when any mail went.

    `notification` lends another kind its recipients (the recovered mail goes
    to the failure mail's); its own subject and message are used only for its own kind.
    """
    notification = notification or run.task.notifications.filter(event=kind).first()
    if notification is None:
        return False
    recipients = split_recipients(notification.recipients)
    for bad in recipients.invalid:
        log.warning(STAGE, f"“{bad}” in the {kind} mail's recipients is not an email address; it is left out.")
    if not recipients.emails and not recipients.phones:
        log.warning(STAGE, f"The {kind} mail has no valid recipients; nothing is sent.")
        return False
    mc = MailContext(run=run, log=log, params=mail_params(run, log))
    own = notification.event == kind
    mc.values = {**base_values(run), **(extra or {}), "message": mc.fill(notification.message) if own else ""}
    files = mc.values.get("files", [])
    if kind == NotificationEvent.SUCCESS and notification.skip_empty and _output_is_empty(run, files):
        log.info(STAGE, "The output is empty and the success mail is set not to be sent then.")
        return False
    connection = get_connection(fail_silently=False)
    sent = False
    if recipients.emails:
        sent |= _full_mail(mc, kind, notification, recipients.emails, files, connection)
    if recipients.phones:
        sent |= _text_message(mc, kind, notification, recipients.phones, connection)
    return sent


def _full_mail(mc: MailContext, kind: str, notification: Notification, to: list[str], files: list[RunFile], connection) -> bool:
    message = EmailMultiAlternatives(to=to, connection=connection)
    if kind == NotificationEvent.SUCCESS and notification.embed:
        _embed(mc.run, files, mc.values)
    if kind == NotificationEvent.SUCCESS and notification.attach:
        _attach(message, files, notification.skip_empty, mc.values)
    subject, text, html = render(kind, mc.values)
    # A header may not hold a line break: a subject is one line, whatever was typed.
    custom = notification.subject.strip() and notification.event == kind
    message.subject = " ".join(mc.fill(notification.subject).split()) if custom else subject
    message.body = text
    message.attach_alternative(html, "text/html")
    return send_message(mc, message, f"{kind} mail to {', '.join(to)}")


# --------------------------------------------------------------------------
# Follow-ups (runs/followups.py STEPS)
# --------------------------------------------------------------------------

def _logger(run: Run, log: RunLogger | None) -> RunLogger:
    return log if log is not None else RunLogger(run)


def send_success_mail(run: Run, log: RunLogger | None = None) -> None:
    if run.status != RunStatus.SUCCEEDED:
        return
    # Looked up first: a task without a success mail (most) need not read the run's files.
    notification = run.task.notifications.filter(event=NotificationEvent.SUCCESS).first()
    if notification is not None:
        notify(run, _logger(run, log), NotificationEvent.SUCCESS, {"files": output_files(run)}, notification=notification)


def send_failure_mail(run: Run, log: RunLogger | None = None, *, even_if_retrying: bool = False) -> None:
    """The failure mail — only when no retry follows, unless `even_if_retrying`."""
    if run.status != RunStatus.FAILED:
        return
    log = _logger(run, log)
    plan = retry_plan(run)
    if plan["will_retry"] and not even_if_retrying:
        log.info(STAGE, f"No failure mail: attempt {plan['next']} follows at {plan['at']}.")
        return
    notification = run.task.notifications.filter(event=NotificationEvent.FAILURE).first()
    if notification is None:
        return
    streak = failure_streak(run, notification.after_failures)
    if streak < notification.after_failures and not even_if_retrying:
        log.info(STAGE, f"No failure mail: {streak} run(s) in a row failed for good; the task mails after {notification.after_failures}.")
        return
    values = {"retry": plan, "log_tail": log_tail(run), "files": output_files(run), "streak": streak}
    if notify(run, log, NotificationEvent.FAILURE, values, notification=notification):
        Run.objects.filter(pk=run.pk).update(failure_alerted=True)
