"""Rendering the pages: one Jinja2 environment (autoescaped, StrictUndefined) and the helpers templates use.

Untrusted text (mentions, names, notes, drafts) only ever reaches the page through autoescaping; the one
piece of markup built in Python, the findings underlined in a draft, escapes every segment itself.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie
from markupsafe import Markup, escape

from assistant.policy import count_length, platform_limit
from assistant.web.security import CSRF_COOKIE, CSRF_FIELD, csrf_token_for, is_https, secret_of

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

PACKAGE_TEMPLATES = [TEMPLATES, Path(__file__).parents[1] / "memory" / "templates"]
"""The web package's templates, then those of packages that render their own pages."""

env = Environment(loader=FileSystemLoader(PACKAGE_TEMPLATES), autoescape=select_autoescape(["html"], default=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read a field from a msgspec Struct, a dataclass or a dict alike."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def waited(since: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if since is None:
        return ""
    seconds = max(0, int(_seconds_since(since, now)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


WAIT_LEVELS = ((15 * 60, "wait-fresh"), (60 * 60, "wait-warm"), (4 * 3600, "wait-long"))
"""Waits under each bound get its colour class; longer ones get ``wait-over``: the colour grows with the wait."""


def wait_level(since: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if since is None:
        return "wait-fresh"
    seconds = _seconds_since(since, now)
    return next((name for bound, name in WAIT_LEVELS if seconds < bound), "wait-over")


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A time relative to now for people ("5 min ago", "yesterday", "3 Mar"); the page puts the absolute time
    in the ``title`` beside it."""
    if value is None:
        return ""
    now = now or dt.datetime.now(dt.timezone.utc)
    value = _utc(value)
    seconds = int(_seconds_since(value, now))
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 86400:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    days = seconds // 86400
    if days == 1:
        return "yesterday"
    if days < 14:
        return f"{days} days ago"
    if value.year == now.year:
        return f"{value.day} {value:%b}"
    return f"{value.day} {value:%b} {value.year}"


def when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return _utc(value).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _utc(value: dt.datetime) -> dt.datetime:
    """A stored time with its zone: SQLite hands times back without one, and they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _seconds_since(value: dt.datetime, now: dt.datetime | None) -> float:
    return ((now or dt.datetime.now(dt.timezone.utc)) - _utc(value)).total_seconds()


def plain(value: Any) -> str:
    """A stored value as a person reads it: yes/no, a list joined, never a Python repr."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, dt.datetime):
        return when(value)
    return str(value)


def day(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def underline(text: str, findings: list[Any], prefix: str) -> Markup:
    """The text as escaped segments, each finding's [start, end) wrapped in a ``<mark>`` that names its
    message (title) and points at the finding in the list below (aria-describedby ``{prefix}-{i}``)."""
    spans = []
    for i, f in enumerate(findings or []):
        start, end = field(f, "start"), field(f, "end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
            spans.append((start, end, i, f))
    cuts = sorted({0, len(text), *(s for s, *_ in spans), *(e for _, e, *_ in spans)})
    out: list[str] = []
    for a, b in zip(cuts, cuts[1:]):
        piece = escape(text[a:b])
        covering = [(i, f) for s, e, i, f in spans if s <= a and b <= e]
        if not covering:
            out.append(str(piece))
            continue
        severity = "block" if any(field(f, "severity") == "block" for _, f in covering) else "warn"
        title = "; ".join(str(field(f, "message", "")) for _, f in covering)
        ids = " ".join(f"{prefix}-{i}" for i, _ in covering)
        out.append(f'<mark class="finding {severity}" title="{escape(title)}" aria-describedby="{ids}">'
                   f"{piece}</mark>")
    return Markup("".join(out))


env.filters.update(waited=waited, when=when, day=day, ago=ago, wait_level=wait_level, plain=plain)
env.globals.update(field=field, underline=underline, count_length=count_length, platform_limit=platform_limit)


def csrf_cookie_value(request: Request[Any, Any, Any]) -> tuple[str, bool]:
    value = request.cookies.get(CSRF_COOKIE)
    if value and 20 <= len(value) <= 100:
        return value, False
    cached = request.scope.get("_ra_new_csrf")  # type: ignore[typeddict-item]
    if cached:
        return cached, True
    value = secrets.token_urlsafe(32)
    request.scope["_ra_new_csrf"] = value  # type: ignore[typeddict-unknown-key]
    return value, True


def page(request: Request[Any, Any, Any], template: str, *, status: int = 200, viewer: Any = None,
         cookies: list[Cookie] | None = None, **context: Any) -> Response[str]:
    context.setdefault("notice", None)
    cookie_value, fresh = csrf_cookie_value(request)
    token = csrf_token_for(secret_of(request), cookie_value)
    html = env.get_template(template).render(
        viewer=viewer, csrf_field=CSRF_FIELD, csrf_token=token, path=request.url.path, status=status, **context)
    all_cookies = list(cookies or [])
    if fresh:
        all_cookies.append(Cookie(key=CSRF_COOKIE, value=cookie_value, httponly=True, samesite="lax",
                                  secure=is_https(request), path="/"))
    return Response(html, status_code=status, media_type="text/html; charset=utf-8", cookies=all_cookies,
                    headers={"Cache-Control": "no-store"})


def error_page(request: Request[Any, Any, Any], status: int, title: str, detail: str) -> Response[str]:
    """The HTML error page a browser gets (the pages' own errors and unknown addresses alike)."""
    return page(request, "error.html", status=status, viewer=None, title=title, detail=detail)
