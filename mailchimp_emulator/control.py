"""`/_emulator/...`: the control surface for tests and tools in other processes.

JSON in and out, no auth, served only when the emulator is bound to loopback. Never
counted in the stats, never throttled, never delayed, never faulted. Errors are
problem+json like the API's (400 bad input, 404 unknown route or member).

    GET    /_emulator/health               {base_url, list_id, api_key}
    GET    /_emulator/stats                StatsSnapshot.as_json()
    POST   /_emulator/stats/reset          204
    POST   /_emulator/reset                204: members, forgotten, webhooks, faults, stats
    GET    /_emulator/settings             rules + latency_ms + max_connections
    PUT    /_emulator/settings             {any of those} -> the settings
    PUT    /_emulator/latency              {"ms": 20} -> the settings
    GET    /_emulator/members[?status=]    {members: [member JSON]}
    POST   /_emulator/members              {members: [{email_address, status, ...}]} seed
    GET    /_emulator/addresses/<email|hash>  {member|null, confirmation_mails_sent, forgotten}
    GET    /_emulator/faults               {faults: [{kind, remaining, match, ...}]}
    POST   /_emulator/faults               {kind, count=1, match, probability=1, seconds=1}
    DELETE /_emulator/faults               204 (faults and hooks)
    POST   /_emulator/fire/<type>          {deliveries: [{url, event_type, status, error}]}
        subscribe {email, merges?, ip_opt?}   unsubscribe {email, reason?, campaign_id?, action?}
        cleaned {email, reason?, campaign_id?}  profile {email, merges, interests?,
                                                marketing_permissions?: {text: bool}}
        upemail {old_email, new_email}          campaign {campaign_id, subject?, status?}
        all take "source" (user|admin|api, default user) and "deliver" (default true)
    POST   /_emulator/webhooks/redeliver   {deliveries: [...]}: retry the failed ones
    GET    /_emulator/audiences            {audiences: [{list_id, name, marketing_permissions:
                                           {id: text}, interest_categories: {title: {name: id}}}]}
    POST   /_emulator/audiences            {list_id, name?, marketing_permissions?: [text],
                                           interest_categories?: {title: [name]}} -> that audience
Every route about one audience (members, addresses, settings, fire) takes `list_id` in its
body or query (default: the default audience; an unknown one is 404).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from mailchimp_emulator.api import NO_CONTENT, Reply, json_reply, parse_json, problem_reply
from mailchimp_emulator.problems import ApiProblem, field_error, not_found

if TYPE_CHECKING:
    from mailchimp_emulator.audience import Audience
    from mailchimp_emulator.emulator_core import EmulatorCore
    from mailchimp_emulator.webhook_delivery import Delivery

_RULE_NAMES = (
    "allow_api_resubscribe",
    "required_merge_fields",
    "known_merge_fields",
    "refused_addresses",
    "recent_signup_addresses",
    "refuse_invalid_tld",
    "validate_webhook_urls",
    "max_batch_members",
    "max_page_count",
)


def _settings(emu: EmulatorCore, list_id: str | None = None) -> dict[str, Any]:
    rules = asdict(emu.audience_of(list_id).rules)
    rules["refused_addresses"] = sorted(rules["refused_addresses"])
    rules["recent_signup_addresses"] = sorted(rules["recent_signup_addresses"])
    rules["required_merge_fields"] = list(rules["required_merge_fields"])
    rules["known_merge_fields"] = list(rules["known_merge_fields"])
    return {**rules, "latency_ms": emu.latency_ms, "max_connections": emu.max_connections}


def _put_settings(emu: EmulatorCore, body: dict[str, Any]) -> dict[str, Any]:
    list_id = body.pop("list_id", None)
    unknown = set(body) - {*_RULE_NAMES, "latency_ms", "max_connections"}
    if unknown:
        raise field_error(sorted(unknown)[0], "Unknown setting.")
    if "latency_ms" in body:
        emu.set_latency(float(body["latency_ms"]))
    if "max_connections" in body:
        emu.set_max_connections(int(body["max_connections"]))
    rules = {k: v for k, v in body.items() if k in _RULE_NAMES}
    if rules:
        emu.configure(list_id, **rules)
    return _settings(emu, list_id)


def _address(emu: EmulatorCore, email_or_hash: str, list_id: str | None) -> dict[str, Any]:
    audience = emu.audience_of(list_id)
    member = audience.member(email_or_hash)
    if member is None and "@" not in email_or_hash:
        raise not_found()
    email = member["email_address"] if member else email_or_hash
    return {
        "member": member,
        "confirmation_mails_sent": audience.confirmation_mails_sent(email),
        "forgotten": audience.is_forgotten(email),
    }


def _seed(emu: EmulatorCore, body: dict[str, Any]) -> dict[str, Any]:
    seeded = []
    list_id = body.get("list_id")
    for item in body.get("members") or []:
        fields = dict(item)
        email = fields.pop("email_address")
        status = fields.pop("status", "subscribed")
        seeded.append(emu.seed_member(email, status, list_id=list_id, **fields))
    return {"members": seeded}


def _audience_doc(audience: Audience) -> dict[str, Any]:
    fields = audience.fields
    return {
        "list_id": audience.list_id,
        "name": audience.name,
        "marketing_permissions": dict(fields.permissions),
        "interest_categories": {
            c.title: {name: i for i, name in c.interests.items()}
            for c in fields.categories.values()
        },
    }


def _add_audience(emu: EmulatorCore, body: dict[str, Any]) -> dict[str, Any]:
    list_id = body.get("list_id")
    if not isinstance(list_id, str):
        raise field_error("list_id", "This value should not be blank.")
    try:
        audience = emu.add_audience(
            list_id,
            name=body.get("name"),
            marketing_permissions=body.get("marketing_permissions") or (),
            interest_categories=body.get("interest_categories") or {},
        )
    except ValueError as exc:
        raise field_error("list_id", str(exc)) from None
    return _audience_doc(audience)


def _inject(emu: EmulatorCore, body: dict[str, Any]) -> dict[str, Any]:
    try:
        emu.inject_fault(
            body["kind"],
            count=body.get("count", 1),
            match=body.get("match"),
            probability=float(body.get("probability", 1.0)),
            seconds=float(body.get("seconds", 1.0)),
        )
    except (KeyError, ValueError) as exc:
        raise field_error("kind", f"Bad fault: {exc}") from None
    return {"faults": emu.pending_faults()}


def _deliveries(result: list[Delivery]) -> dict[str, Any]:
    return {"deliveries": [asdict(d) for d in result]}


def _fire(emu: EmulatorCore, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    deliver = bool(body.get("deliver", True))
    source = str(body.get("source", "user"))
    list_id = body.get("list_id")
    try:
        if kind == "subscribe":
            result = emu.fire_subscribe(
                body["email"],
                body.get("merges"),
                ip_opt=body.get("ip_opt", ""),
                source=source,
                deliver=deliver,
                list_id=list_id,
            )
        elif kind == "unsubscribe":
            result = emu.fire_unsubscribe(
                body["email"],
                reason=body.get("reason", "manual"),
                campaign_id=body.get("campaign_id"),
                action=body.get("action", "unsub"),
                source=source,
                deliver=deliver,
                list_id=list_id,
            )
        elif kind == "cleaned":
            result = emu.fire_cleaned(
                body["email"],
                body.get("reason", "hard"),
                body.get("campaign_id"),
                source=source,
                deliver=deliver,
                list_id=list_id,
            )
        elif kind == "profile":
            result = emu.fire_profile(
                body["email"],
                body.get("merges") or {},
                interests=body.get("interests"),
                marketing_permissions=body.get("marketing_permissions"),
                source=source,
                deliver=deliver,
                list_id=list_id,
            )
        elif kind == "upemail":
            result = emu.fire_upemail(
                body["old_email"], body["new_email"], source=source, deliver=deliver,
                list_id=list_id,
            )
        elif kind == "campaign":
            result = emu.fire_campaign(
                body["campaign_id"],
                body.get("subject", ""),
                body.get("status", "sent"),
                deliver=deliver,
                list_id=list_id,
            )
        else:
            raise not_found()
    except KeyError as missing:
        raise field_error(str(missing.args[0]), "This value should not be blank.") from None
    except LookupError:
        raise not_found() from None
    return _deliveries(result)


def _route(  # noqa: PLR0911, PLR0912 - one flat route table, read top to bottom
    emu: EmulatorCore, method: str, name: str, arg: str, body: dict[str, Any]
) -> Any:
    """The answer document; None means 204."""
    match (method, name, arg):
        case ("GET", "health", ""):
            return {"base_url": emu.base_url, "list_id": emu.list_id, "api_key": emu.api_key}
        case ("GET", "stats", ""):
            return emu.stats.as_json()
        case ("POST", "stats", "reset"):
            emu.reset_stats()
        case ("POST", "reset", ""):
            emu.reset()
        case ("GET", "settings", ""):
            return _settings(emu, body.get("list_id"))
        case ("PUT", "settings", ""):
            return _put_settings(emu, body)
        case ("PUT", "latency", ""):
            return _put_settings(emu, {"latency_ms": body.get("ms", 0)})
        case ("GET", "members", ""):
            return {"members": emu.members(body.get("status"), body.get("list_id"))}
        case ("POST", "members", ""):
            return _seed(emu, body)
        case ("GET", "addresses", address) if address:
            return _address(emu, address, body.get("list_id"))
        case ("GET", "faults", ""):
            return {"faults": emu.pending_faults()}
        case ("POST", "faults", ""):
            return _inject(emu, body)
        case ("DELETE", "faults", ""):
            emu.clear_faults()
        case ("POST", "fire", kind) if kind:
            return _fire(emu, kind, body)
        case ("GET", "audiences", ""):
            return {"audiences": [_audience_doc(a) for a in emu.audiences.values()]}
        case ("POST", "audiences", ""):
            return _add_audience(emu, body)
        case ("POST", "webhooks", "redeliver"):
            return _deliveries(emu.redeliver_failed())
        case _:
            raise not_found()
    return None


def handle(
    emu: EmulatorCore, method: str, path: str, query: dict[str, list[str]], raw: bytes
) -> Reply:
    """Route `/_emulator/<name>[/<arg>]`; GET parameters arrive as the body dict."""
    name, _, arg = path.removeprefix("/_emulator/").strip("/").partition("/")
    try:
        body = parse_json(raw) if method != "GET" else {k: v[-1] for k, v in query.items()}
        if not isinstance(body, dict):
            raise field_error("body", "The request body must be a JSON object.")
        doc = _route(emu, method, name, unquote(arg), body)
    except ApiProblem as problem:
        return problem_reply(problem)
    except LookupError:
        return problem_reply(not_found())
    except (TypeError, ValueError) as exc:
        return problem_reply(field_error("body", str(exc)))
    return NO_CONTENT if doc is None else json_reply(doc)
