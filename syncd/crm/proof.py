"""Proof of consent (Art. 7(1) GDPR): per purpose, the whole story of one person in order —
what they were shown, when and from where they gave and confirmed it, the confirmation
proof, withdrawals and their channel, suppressions — with Mailchimp's own record of the
opt-in (read live when reachable, marked when not) and the webhooks received about them.

The JSON ("syncd-consent-proof/1") is documented in docs/subject-data.md; `render_text` is
the same story in sentences a DPO or the person can read."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncd.clock import utcnow
from syncd.config import Settings
from syncd.consent.ledger import fact
from syncd.consent.policy import SuppressionFact, decide
from syncd.crm.subject import Subject, event_dict, iso, suppression_dict, webhook_dict
from syncd.esp.protocol import RemoteMember

if TYPE_CHECKING:
    from syncd.context import AppContext

PROOF_SCHEMA = "syncd-consent-proof/1"
# What each ledger action means, in words for the person.
_STEP = {
    "given": "consent given",
    "confirmed": "consent confirmed (double opt-in)",
    "withdrawn": "consent withdrawn",
    "soft_opt_in": "soft opt-in recorded (existing customer; not consent)",
}


def mailchimp_unread(reason: str, detail: str | None = None) -> dict[str, Any]:
    """Mailchimp's side when it could not be read: clearly marked, never guessed."""
    return {"read": reason, "error": detail, "status": None, "timestamp_opt": None,
            "ip_opt": None, "last_changed": None, "unsubscribe_reason": None}


def mailchimp_read(member: RemoteMember | None, *, audience_id: str) -> dict[str, Any]:
    if member is None:
        return mailchimp_unread("live_not_a_member") | {"audience_id": audience_id}
    return {"read": "live", "error": None, "audience_id": audience_id,
            "status": member.status, "timestamp_opt": iso(member.timestamp_opt),
            "ip_opt": member.ip_opt, "last_changed": iso(member.last_changed),
            "unsubscribe_reason": member.unsubscribe_reason}


def build(subject: Subject, settings: Settings, *, mailchimp: dict[str, Any],
          now: datetime) -> dict[str, Any]:
    """The proof document for a person with a contact record."""
    contact = subject.contact
    assert contact is not None
    facts = [fact(e) for e in subject.events]
    blocks = [SuppressionFact(s.purpose, s.reason, s.created_at) for s in subject.suppressions]
    purposes = sorted(settings.purposes | {e.purpose for e in subject.events})
    stories: dict[str, Any] = {}
    for purpose in purposes:
        decision = decide(purpose=purpose, events=facts, suppressions=blocks,
                          is_customer=contact.is_customer,
                          undeliverable_since=contact.undeliverable_at, now=now)
        stories[purpose] = {
            "eligible": decision.eligible, "standing": str(decision.standing),
            "reason": decision.reason,
            "events": [event_dict(e) for e in subject.events if e.purpose == purpose],
            "suppressions": [suppression_dict(s) for s in subject.suppressions
                             if s.purpose in (purpose, "*")],
        }
    known = [{"audience_id": p.audience_id, "esp_status": p.esp_status,
              "updated_at": iso(p.updated_at)} for p in subject.push_states]
    return {
        "schema": PROOF_SCHEMA, "generated_at": iso(now),
        "person": {"email": contact.email_display, "contact_id": contact.id,
                   "created_at": iso(contact.created_at),
                   "customer": contact.is_customer,
                   "undeliverable_since": iso(contact.undeliverable_at)},
        "purposes": stories,
        "mailchimp": mailchimp | {"known_to_syncd": known},
        "webhooks": [webhook_dict(w, body=False) for w in subject.webhooks],
    }


def _when(value: str | None) -> str:
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _event_line(event: dict[str, Any]) -> str:
    parts = [f"{_when(event['occurred_at'])}  {_STEP.get(event['action'], event['action'])}",
             f"via {event['channel']}"]
    if event["form_url"]:
        parts.append(f"on {event['form_url']}")
    shown = [f"text {event['text_version']}" if event["text_version"] else None,
             f"privacy notice {event['privacy_notice_version']}"
             if event["privacy_notice_version"] else None]
    if any(shown):
        parts.append("shown " + " and ".join(s for s in shown if s))
    if event["ip"]:
        parts.append(f"from {event['ip']}")
    if event["user_agent"]:
        parts.append(f"browser {event['user_agent']!r}")
    if event["confirmation_token_hash"]:
        parts.append(f"confirmation token hash {event['confirmation_token_hash']}")
    if event["reason"]:
        parts.append(f"({event['reason']})")
    parts.append(f"[recorded {_when(event['recorded_at'])}, ledger position "
                 f"{event['chain']['seq']}]")
    return ", ".join(parts[:2]) + (" " + ", ".join(parts[2:]) if parts[2:] else "")


def render_text(doc: dict[str, Any]) -> list[str]:
    """The proof as lines of plain text."""
    person = doc["person"]
    lines = [f"Proof of consent for {person['email']} (contact {person['contact_id']}), "
             f"as of {_when(doc['generated_at'])}", ""]
    for purpose, story in doc["purposes"].items():
        if not story["events"] and not story["suppressions"]:
            continue
        verdict = "may be mailed" if story["eligible"] else "may NOT be mailed"
        lines.append(f"Purpose {purpose}: {verdict} ({story['reason']})")
        lines.extend(f"  {_event_line(e)}" for e in story["events"])
        lines.extend(f"  {_when(s['since'])}  suppressed for "
                     f"{'every purpose' if s['purpose'] == '*' else s['purpose']} "
                     f"({s['reason']})" for s in story["suppressions"])
        lines.append("")
    quiet = [p for p, s in doc["purposes"].items() if not s["events"] and not s["suppressions"]]
    if quiet:
        lines += [f"No consent recorded for: {', '.join(quiet)}", ""]
    esp = doc["mailchimp"]
    if esp["read"] == "live":
        lines.append(f"Mailchimp (read live, audience {esp['audience_id']}): status "
                     f"{esp['status']}, opt-in confirmed {_when(esp['timestamp_opt'])} from "
                     f"{esp['ip_opt'] or 'no address recorded'}"
                     + (f", unsubscribe reason {esp['unsubscribe_reason']!r}"
                        if esp["unsubscribe_reason"] else ""))
    elif esp["read"] == "live_not_a_member":
        lines.append("Mailchimp (read live): not a member of the audience")
    else:
        lines.append(f"Mailchimp NOT read ({esp['read']}"
                     + (f": {esp['error']}" if esp["error"] else "") + "); "
                     "what syncd last knew: "
                     + (", ".join(f"{k['esp_status'] or 'never added'} in {k['audience_id']}"
                                  for k in esp["known_to_syncd"]) or "nothing"))
    lines.append("")
    if doc["webhooks"]:
        lines.append("Webhooks received about this person:")
        lines.extend(f"  {_when(w['received_at'])}  {w['kind']} (fired {_when(w['fired_at'])}), "
                     f"{w['status']}" for w in doc["webhooks"])
    else:
        lines.append("No webhooks received about this person.")
    return lines


# A proof is asked for by a person waiting for it: one try, a short deadline.
ESP_READ_TIMEOUT_SECONDS = 10.0


def read_mailchimp(settings: Settings, email: str,
                   audience_id: str | None = None) -> dict[str, Any]:
    """Mailchimp's record of the member in `audience_id` (a target's; None: the
    single-audience setting), live; marked `not_configured` or `unreachable` (with the
    reason) when it cannot be read."""
    from syncd.esp.errors import EspError
    from syncd.esp.mailchimp import MailchimpClient, base_url_for

    audience = audience_id or settings.mailchimp_audience_id
    if settings.mailchimp_api_key is None or not audience:
        return mailchimp_unread("not_configured")
    try:
        client = MailchimpClient(
            api_key=settings.mailchimp_api_key.get_secret_value(),
            audience_id=audience, base_url=base_url_for(settings),
            max_connections=1, timeout_seconds=min(settings.mailchimp_timeout_seconds,
                                                   ESP_READ_TIMEOUT_SECONDS), max_retries=0)
    except Exception as exc:  # a bad key format: say so, the local proof still stands
        return mailchimp_unread("unreachable", f"{type(exc).__name__}: {exc}")
    try:
        member = client.get_member(email)
    except EspError as exc:
        return mailchimp_unread("unreachable", str(exc))
    finally:
        client.close()
    return mailchimp_read(member, audience_id=audience)


def proof_for(ctx: AppContext, email: str, *, read_esp: bool = True,
              now: datetime | None = None,
              audience_id: str | None = None) -> dict[str, Any] | None:
    """The proof document for `email`, or None when syncd has no contact for it;
    Mailchimp's record is read in `audience_id` (None: the single-audience setting)."""
    from syncd.crm.subject import gather

    moment = now or utcnow()
    with ctx.sessions() as session:  # closed before Mailchimp is asked
        subject = gather(session, ctx.keyring, email)
    if subject.contact is None:
        return None
    esp = (read_mailchimp(ctx.settings, subject.email_key, audience_id) if read_esp
           else mailchimp_unread("not_asked"))
    return build(subject, ctx.settings, mailchimp=esp, now=moment)
