"""Routing of Mailchimp Marketing API v3 requests (`/3.0/...`) onto the account's
audiences (by list id; an unknown one answers 404 like any unknown resource).

Pure functions of (method, path, query, body) -> Reply; the socket side lives in
server.py. Route kinds double as the keys of the call statistics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailchimp_emulator.audience import Audience
from mailchimp_emulator.problems import ApiProblem, field_error, not_found

JSON_TYPE = "application/json; charset=utf-8"
PROBLEM_TYPE = "application/problem+json; charset=utf-8"
_LIST = r"^/3\.0/lists/(?P<list_id>[^/]+)"
_MEMBER = _LIST + r"/members/(?P<hash>[^/]+)"
_CATEGORY = _LIST + r"/interest-categories/(?P<category_id>[^/]+)"
ROUTES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern + "/?$"), kind)
    for pattern, kind in (
        (r"^/3\.0/ping", "ping"),
        (r"^/3\.0/lists", "lists"),
        (_LIST, "list"),
        (_LIST + r"/members", "members"),
        (_MEMBER, "member"),
        (_MEMBER + r"/tags", "member_tags"),
        (_MEMBER + r"/actions/delete-permanent", "delete_permanent"),
        (_LIST + r"/webhooks", "webhooks"),
        (_LIST + r"/webhooks/(?P<webhook_id>[^/]+)", "webhook"),
        (_LIST + r"/interest-categories", "interest_categories"),
        (_CATEGORY, "interest_category"),
        (_CATEGORY + r"/interests", "interests"),
        (_CATEGORY + r"/interests/(?P<interest_id>[^/]+)", "interest"),
    )
)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    reset: bool = False  # close the socket without answering


def json_reply(doc: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(doc, separators=(",", ":")).encode(), JSON_TYPE)


def problem_reply(problem: ApiProblem) -> Reply:
    return Reply(problem.status, json.dumps(problem.document()).encode(), PROBLEM_TYPE)


NO_CONTENT = Reply(204)


def classify(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The route kind ('member', 'batch', ...) and its path parameters."""
    for pattern, kind in ROUTES:
        found = pattern.match(path)
        if found:
            return ("batch" if kind == "list" and method == "POST" else kind), found.groupdict()
    return "unknown", {}


def parse_json(raw: bytes) -> Any:
    """The request body; the official client sends `null` for body-less POSTs."""
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(
            400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
        ) from None
    return {} if doc is None else doc


def parse_when(name: str, text: str) -> datetime:
    """ISO 8601 with or without zone; naive means UTC."""
    value = text.strip().replace("Z", "+00:00")
    # An unencoded '+' in a query string arrives as a space.
    value = re.sub(r"(\d) (\d{2}:?\d{2})$", r"\1+\2", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise field_error(name, "Please provide a valid ISO 8601 date and time.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    text = _one(query, name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise field_error(name, "Please provide an integer.") from None


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return (_one(query, name) or "").lower() == "true"


def _paths(query: dict[str, list[str]], name: str) -> list[list[str]]:
    text = _one(query, name) or ""
    return [p.strip().split(".") for p in text.split(",") if p.strip()]


def _include(value: Any, paths: list[list[str]]) -> Any:
    if isinstance(value, list):
        return [_include(v, paths) for v in value]
    if not isinstance(value, dict) or any(not p for p in paths):
        return value
    out = {}
    for key, item in value.items():
        sub = [p[1:] for p in paths if p[0] == key]
        if sub:
            out[key] = _include(item, sub)
    return out


def _exclude(value: Any, paths: list[list[str]]) -> Any:
    if isinstance(value, list):
        return [_exclude(v, paths) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        sub = [p[1:] for p in paths if p[0] == key]
        if any(not s for s in sub):
            continue
        out[key] = _exclude(item, sub) if sub else item
    return out


def project(doc: Any, query: dict[str, list[str]]) -> Any:
    """`fields` / `exclude_fields`: comma-separated dotted paths."""
    fields, excluded = _paths(query, "fields"), _paths(query, "exclude_fields")
    if fields:
        doc = _include(doc, fields)
    if excluded:
        doc = _exclude(doc, excluded)
    return doc


@dataclass(frozen=True)
class Call:
    method: str
    kind: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any


Handler = Callable[[Audience, Call], Any]


def _body(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        raise field_error("body", "The request body must be a JSON object.")
    return call.body


def _list_members(audience: Audience, call: Call) -> Any:
    q = call.query
    sort_field = _one(q, "sort_field") or "last_changed"
    if sort_field != "last_changed":
        raise field_error("sort_field", "The emulator sorts by last_changed only.")
    since, before = _one(q, "since_last_changed"), _one(q, "before_last_changed")
    return audience.list_members(
        status=_one(q, "status"),
        since_last_changed=parse_when("since_last_changed", since) if since else None,
        before_last_changed=parse_when("before_last_changed", before) if before else None,
        count=_int(q, "count", 10),
        offset=_int(q, "offset", 0),
        sort_dir=_one(q, "sort_dir") or "ASC",
    )


def _none(action: Callable[[], None]) -> Any:
    action()
    return None


_HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", "ping"): lambda _a, _c: {"health_status": "Everything's Chimpy!"},
    ("GET", "list"): lambda a, _c: a.info(),
    ("POST", "batch"): lambda a, c: a.batch(
        _body(c), skip_merge_validation=_flag(c.query, "skip_merge_validation")
    ),
    ("GET", "members"): _list_members,
    ("POST", "members"): lambda a, c: a.add_member(
        _body(c), skip_merge_validation=_flag(c.query, "skip_merge_validation")
    ),
    ("GET", "member"): lambda a, c: a.get_member(c.params["hash"]),
    ("PUT", "member"): lambda a, c: a.put_member(
        c.params["hash"], _body(c), skip_merge_validation=_flag(c.query, "skip_merge_validation")
    ),
    ("PATCH", "member"): lambda a, c: a.patch_member(
        c.params["hash"], _body(c), skip_merge_validation=_flag(c.query, "skip_merge_validation")
    ),
    ("DELETE", "member"): lambda a, c: _none(lambda: a.archive(c.params["hash"])),
    ("POST", "member_tags"): lambda a, c: _none(lambda: a.set_tags(c.params["hash"], _body(c))),
    ("POST", "delete_permanent"): lambda a, c: _none(lambda: a.delete_permanent(c.params["hash"])),
    ("GET", "webhooks"): lambda a, _c: a.webhooks.all(),
    ("POST", "webhooks"): lambda a, c: a.webhooks.add(
        _body(c), validate=a.rules.validate_webhook_urls
    ),
    ("GET", "webhook"): lambda a, c: a.webhooks.get(c.params["webhook_id"]),
    ("PATCH", "webhook"): lambda a, c: a.webhooks.update(c.params["webhook_id"], _body(c)),
    ("DELETE", "webhook"): lambda a, c: _none(lambda: a.webhooks.delete(c.params["webhook_id"])),
    ("GET", "interest_categories"): lambda a, c: a.interest_categories(
        count=_int(c.query, "count", 10), offset=_int(c.query, "offset", 0)
    ),
    ("POST", "interest_categories"): lambda a, c: a.add_interest_category_api(_body(c)),
    ("GET", "interest_category"): lambda a, c: a.interest_category(c.params["category_id"]),
    ("GET", "interests"): lambda a, c: a.interests(
        c.params["category_id"], count=_int(c.query, "count", 10), offset=_int(c.query, "offset", 0)
    ),
    ("POST", "interests"): lambda a, c: a.add_interest_api(c.params["category_id"], _body(c)),
    ("GET", "interest"): lambda a, c: a.interest(c.params["category_id"], c.params["interest_id"]),
}


def _lists(audiences: Mapping[str, Audience], call: Call) -> Any:
    if call.method != "GET":
        raise ApiProblem(
            405, "Method Not Allowed", "The requested method and resource are not compatible."
        )
    infos = [a.info() for a in audiences.values()]
    count, offset = _int(call.query, "count", 10), _int(call.query, "offset", 0)
    return {"lists": infos[offset : offset + count], "total_items": len(infos)}


def handle(audiences: Mapping[str, Audience], call: Call) -> Reply:
    """Answer one authenticated API call; `audiences` by list id, the default first."""
    try:
        if call.kind == "unknown":
            raise not_found()
        if call.kind == "lists":
            doc = _lists(audiences, call)
            return json_reply(project(doc, call.query))
        list_id = call.params.get("list_id")
        audience = audiences.get(list_id) if list_id is not None else next(iter(audiences.values()))
        if audience is None:
            raise not_found()
        handler = _HANDLERS.get((call.method, call.kind))
        if handler is None:
            raise ApiProblem(
                405, "Method Not Allowed", "The requested method and resource are not compatible."
            )
        doc = handler(audience, call)
    except ApiProblem as problem:
        return problem_reply(problem)
    if doc is None:
        return NO_CONTENT
    return json_reply(project(doc, call.query))
