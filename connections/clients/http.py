"""Code over HTTP(S): plain web URLs (optional token header) and GitLab's raw-file API.

Tokens stay home (SPEC §8.2): a web connection's header goes only to URLs
under its base URL, a GitLab token only to its instance. Redirects are
followed by hand; one that leaves the connection's base drops the token.
Every request, redirects included, is refused when it would reach a local
address (connections/clients/addresses.py). Messages show URLs without
user info or query string, which may carry a token.
"""

from __future__ import annotations

import json
import warnings
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests
import urllib3

from connections.clients.addresses import refuse_local
from connections.clients.base import Client, ClientError
from connections.clients.peer_guard import GuardedAdapter
from connections.urls import is_within, shown

TIMEOUT = (10, 60)  # connect, and each read
MAX_BYTES = 20 * 1024 * 1024  # a query or script, not a data file
MAX_REDIRECTS = 5
DEFAULT_HEADER = "Authorization"


class HttpStatusError(ClientError):
    """The server answered, with a status other than 200."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, permanent=status in (401, 403, 404) or 400 <= status < 500)
        self.status = status


def get(url: str, *, headers: dict[str, str] | None = None, verify: bool = True, scope: str = "") -> bytes:
    """The body of a 200 answer to GET `url`; anything else is a ClientError naming the URL.

    `headers` (a token) are sent only while the URL is within `scope`, the
    connection's base URL; a redirect out of it is followed without them.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise ClientError(f"“{shown(url)}” is not an http(s) URL.", permanent=True)
    headers = dict(headers or {})
    if headers and not is_within(url, scope):
        raise ClientError(f"“{shown(url)}” is not under {shown(scope) or 'a base URL'}: the token is not sent there.", permanent=True)
    for _ in range(MAX_REDIRECTS + 1):
        refuse_local(url)
        response = _request(url, headers, verify)
        if response.is_redirect and "location" in response.headers:
            url = urljoin(url, response.headers["location"])
            if headers and not is_within(url, scope):
                headers = {}
            response.close()
            continue
        return _body(response, url)
    raise ClientError(f"{shown(url)} redirected more than {MAX_REDIRECTS} times.", permanent=True)


def _request(url: str, headers: dict[str, str], verify: bool) -> requests.Response:
    try:
        with warnings.catch_warnings():
            # Not verifying is the connection's explicit choice, not news for every fetch.
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            with requests.Session() as session:
                session.mount("http://", GuardedAdapter())
                session.mount("https://", GuardedAdapter())
                return session.get(url, headers=headers, verify=verify, timeout=TIMEOUT, allow_redirects=False, stream=True)
    except requests.exceptions.SSLError as exc:
        raise ClientError(f"The TLS certificate of {shown(url)} cannot be verified: {_reason(exc)}", permanent=True) from None
    except requests.exceptions.Timeout:
        raise ClientError(f"{shown(url)} did not answer within {TIMEOUT[1]} s.") from None
    except requests.exceptions.RequestException as exc:
        raise ClientError(f"Cannot fetch {shown(url)}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    # requests nests the socket error several levels deep; the innermost says the most.
    while exc.args and isinstance(exc.args[0], Exception):
        exc = exc.args[0]
    inner = getattr(exc, "reason", None)
    return str(inner or exc)


def _body(response: requests.Response, url: str) -> bytes:
    with response:
        if response.status_code != 200:
            raise _status_error(response.status_code, response.reason, url)
        data = bytearray()
        try:
            for chunk in response.iter_content(64 * 1024):
                data += chunk
                if len(data) > MAX_BYTES:
                    raise ClientError(f"{shown(url)} is larger than {MAX_BYTES // (1024 * 1024)} MB; that is not code.", permanent=True)
        except requests.exceptions.RequestException as exc:
            raise ClientError(f"Reading {shown(url)} failed: {_reason(exc)}") from None
    return bytes(data)


def _status_error(status: int, reason: str, url: str) -> HttpStatusError:
    what = f"{shown(url)} answered {status} {reason}".rstrip()
    if status in (401, 403):
        return HttpStatusError(f"{what}: the token is missing, wrong or lacks access.", status)
    if status == 404:
        return HttpStatusError(f"{what}: no such file (or no access to it).", status)
    return HttpStatusError(f"{what}.", status)


# --- Web URL -----------------------------------------------------------------


def web_headers(conn) -> dict[str, str]:
    """The token header of a web connection; a bare token in Authorization is sent as a Bearer token."""
    if conn is None or not conn.token:
        return {}
    header = conn.header.strip() or DEFAULT_HEADER
    value = conn.token
    if header.lower() == "authorization" and " " not in value.strip():
        value = f"Bearer {value}"
    return {header: value}


def _no_base_url(conn) -> str:
    return f"The {conn.get_kind_display()} connection {conn} has no base URL: a superuser must set one before its token is sent anywhere."


def web_scope_problem(conn, url: str) -> str:
    """Why the web connection's token may not be sent to `url` ("" when it may)."""
    if not conn.url:
        return _no_base_url(conn)
    if not is_within(url, conn.url):
        return f"“{shown(url)}” is not under {shown(conn.url)}, the base URL of {conn}: its token is sent only there."
    return ""


def fetch_web(url: str, conn=None) -> bytes:
    if conn is None:
        return get(url)
    headers = web_headers(conn)
    if headers or conn.url:
        problem = web_scope_problem(conn, url)
        if problem:
            raise ClientError(problem, permanent=True)
    return get(url, headers=headers, verify=conn.verify_tls, scope=conn.url)


# --- GitLab --------------------------------------------------------------------


def gitlab_scope_problem(conn, url: str) -> str:
    """Why the GitLab connection's token may not be sent to `url`, which may be relative to the instance ("" when it may)."""
    if not conn.url:
        return _no_base_url(conn)
    if not is_within(urljoin(conn.url.rstrip("/") + "/", url), conn.url):
        return f"“{shown(url)}” is not on the GitLab instance {shown(conn.url)} of {conn}: its token is sent only there."
    return ""


def gitlab_file(conn, url: str, path: str = "") -> tuple[str, list[tuple[str, str]]]:
    """The project path and the candidate (ref, file path) pairs for a GitLab file URL.

    A file page URL (…/group/project/-/blob/<ref>/<file>, or /-/raw/) names
    the branch. A branch may itself contain “/”, so every split is a
    candidate, shortest branch first. A project URL without “/-/” takes the
    file path from `path` and reads the default branch (ref HEAD).
    """
    problem = gitlab_scope_problem(conn, url)
    if problem:
        raise ClientError(problem, permanent=True)
    base_url = conn.url.rstrip("/") + "/"
    base, target = urlsplit(base_url), urlsplit(urljoin(base_url, url))
    inside = unquote(target.path[len(base.path):]).strip("/")
    project, marker, rest = inside.partition("/-/")
    if not marker:
        if not path.strip("/"):
            raise ClientError(f"“{shown(url)}” is a project URL: give the file's path in the repository too.", permanent=True)
        return inside, [("HEAD", path.strip("/"))]
    kind, _, ref_and_file = rest.partition("/")
    pieces = ref_and_file.split("/")
    if kind not in ("blob", "raw") or len(pieces) < 2 or not project:
        raise ClientError(f"“{shown(url)}” is not a GitLab file URL (…/project/-/blob/<branch>/<file>).", permanent=True)
    return project, [("/".join(pieces[:n]), "/".join(pieces[n:])) for n in range(1, len(pieces))]


def gitlab_api_url(conn, project: str, file_path: str, ref: str) -> str:
    return (
        f"{conn.url.rstrip('/')}/api/v4/projects/{quote(project, safe='')}"
        f"/repository/files/{quote(file_path, safe='')}/raw?ref={quote(ref, safe='')}"
    )


def _gitlab_headers(conn) -> dict[str, str]:
    return {"PRIVATE-TOKEN": conn.token} if conn.token else {}


def fetch_gitlab(conn, url: str, path: str = "") -> bytes:
    project, candidates = gitlab_file(conn, url, path)
    for ref, file_path in candidates:
        try:
            return get(gitlab_api_url(conn, project, file_path, ref), headers=_gitlab_headers(conn), verify=conn.verify_tls, scope=conn.url)
        except HttpStatusError as exc:
            # Only "not found" can mean that the branch name goes on past this "/".
            if exc.status != 404:
                raise
    shortest_ref, longest_path = candidates[0]
    raise ClientError(
        f"GitLab {shown(conn.url)} has no file {longest_path} on branch {shortest_ref} of project {project} "
        "(or the token cannot read it).",
        permanent=True,
    )


# --- Connection tests --------------------------------------------------------


def check_gitlab(conn) -> str:
    body = get(f"{conn.url.rstrip('/')}/api/v4/version", headers=_gitlab_headers(conn), verify=conn.verify_tls, scope=conn.url)
    try:
        version = json.loads(body).get("version", "unknown")
    except (ValueError, AttributeError):
        raise ClientError(f"{shown(conn.url)} answered, but not like a GitLab API (no version).", permanent=True) from None
    return f"Connected to GitLab {version} at {shown(conn.url)}; the token was accepted."


def check_web(conn) -> str:
    urls = sorted({c.url for c in conn.code_locations.all() if c.url})
    if not urls:
        return "No code location uses this connection yet, so there was nothing to fetch."
    for url in urls:
        fetch_web(url, conn)
    return f"Fetched {len(urls)} URL(s) that use this connection: {', '.join(shown(u) for u in urls)}."


class GitLabClient(Client):
    def test(self) -> str:
        return check_gitlab(self.conn)

    def scope_problem(self, url: str) -> str:
        return gitlab_scope_problem(self.conn, url)

    def fetch(self, url: str, path: str = "") -> bytes:
        return fetch_gitlab(self.conn, url, path)


class WebClient(Client):
    """Also made without a connection (None), for a public URL fetched without a token."""

    def test(self) -> str:
        return check_web(self.conn)

    def scope_problem(self, url: str) -> str:
        return web_scope_problem(self.conn, url) if self.conn is not None else ""

    def fetch(self, url: str, path: str = "") -> bytes:
        return fetch_web(url, self.conn)
