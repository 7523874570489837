"""Who a target admits and what their member looks like at Mailchimp: the decision over
the target's purposes (any one confirmed admits, rule 1), the member data with its GDPR
permissions per purpose, the soft opt-in's category tags (rule 11), and the fingerprint
the planner compares against what Mailchimp last confirmed. Pure, like the planner."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING

from syncd.consent.policy import Decision, Standing, decide, decide_soft_opt_in
from syncd.esp.protocol import MemberData

if TYPE_CHECKING:
    from syncd.sync.plan import ContactFacts, KnownState, PlanConfig

# A withdrawal or suppression (or a lapsed soft opt-in) of a purpose: when no purpose of
# the target admits, one of these decides, so that a live member is unsubscribed.
_ENDED = (Standing.WITHDRAWN, Standing.SUPPRESSED, Standing.LAPSED)
_ON = (Standing.CONFIRMED, Standing.RE_CONSENT)


_blake2b = hashlib.blake2b


def _digest(value: tuple[object, ...]) -> str:
    # repr of a tuple of str/None/sorted pairs is canonical and much cheaper than JSON.
    return _blake2b(repr(value).encode(), digest_size=16).hexdigest()


def fingerprint(data: MemberData) -> str:
    """64 characters: 32 for the member data, 32 for the tags, so that a tag change and
    a data change are told apart and only the changed part is sent."""
    core: tuple[object, ...] = (
        data.email, tuple(sorted(data.merge_fields.items())), data.ip_signup,
        data.timestamp_signup, data.ip_opt, data.timestamp_opt)
    if data.marketing_permissions or data.interests:  # absent: the digest is as before
        core += (tuple(sorted(data.marketing_permissions.items())),
                 tuple(sorted(data.interests.items())))
    return _digest(core) + _digest(tuple(sorted(data.tags)))


def stamp(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def decide_purpose(facts: ContactFacts, purpose: str, now: datetime) -> Decision:
    return decide(purpose=purpose, events=facts.events, suppressions=facts.suppressions,
                  is_customer=facts.is_customer, undeliverable_since=facts.undeliverable_at,
                  now=now)


def decide_contact(facts: ContactFacts, cfg: PlanConfig, now: datetime) -> Decision:
    """The target's decision. Soft opt-in: its one purpose (rule 11). Consent: a
    confirmed consent for ANY of the target's purposes admits (the first such, in the
    order the settings list them); none admitting, a withdrawn or suppressed one decides
    (a live member leaves), else the first purpose's (its unconfirmed sign-up is the one
    that may go as `pending`)."""
    if cfg.basis == "soft_opt_in":
        return decide_soft_opt_in(purpose=cfg.purpose, purchases=facts.purchases,
                                  events=facts.events, suppressions=facts.suppressions,
                                  undeliverable_since=facts.undeliverable_at, now=now,
                                  months=cfg.soft_opt_in_months)
    first = decide(purpose=cfg.purpose, events=facts.events, suppressions=facts.suppressions,
                   is_customer=facts.is_customer, undeliverable_since=facts.undeliverable_at,
                   now=now)  # decide_purpose, spelt out: it runs for every contact planned
    if first.eligible or len(cfg.admitting) == 1:
        return first
    others = [decide_purpose(facts, p, now) for p in cfg.admitting[1:]]
    admitted = next((d for d in others if d.eligible), None)
    if admitted is not None:
        return admitted
    if first.standing is Standing.UNCONFIRMED and cfg.unconfirmed_as_pending:
        return first  # sent as `pending` (rule 3): the first purpose's only (webhooks.job)
    return next((d for d in (first, *others) if d.standing in _ENDED), first)


def permissions_of(facts: ContactFacts, cfg: PlanConfig, now: datetime) -> dict[str, bool]:
    """Per mapped GDPR permission, each by its own purpose's consent: on for a confirmed
    one, off for a withdrawn or suppressed one; any other standing sends nothing (left as
    it is)."""
    out: dict[str, bool] = {}
    standings: dict[str, Standing] = {}
    for permission_id, purpose in cfg.permissions.items():
        if purpose not in standings:
            standings[purpose] = decide_purpose(facts, purpose, now).standing
        if standings[purpose] in _ON:
            out[permission_id] = True
        elif standings[purpose] in (Standing.WITHDRAWN, Standing.SUPPRESSED):
            out[permission_id] = False
    return out


def permissions_still_on(facts: ContactFacts, cfg: PlanConfig, now: datetime,
                         known: KnownState | None) -> dict[str, bool]:
    """The mapped permissions of withdrawn or suppressed purposes that Mailchimp may
    still have on (push_state.esp_permissions does not say off), each as `False`; the
    others (on, or mapped to no purpose) are not named, so they stay as they are."""
    if not cfg.permissions:
        return {}
    had = decode_permissions(known.esp_permissions if known is not None else None)
    return {pid: False for pid, on in permissions_of(facts, cfg, now).items()
            if not on and had.get(pid) is not False}


def decode_permissions(text: str | None) -> dict[str, bool]:
    """push_state.esp_permissions (compact JSON, id -> enabled); {} for none or junk."""
    found = json.loads(text) if text else {}
    return {str(k): bool(v) for k, v in found.items()} if isinstance(found, dict) else {}


def member_data(facts: ContactFacts, decision: Decision, cfg: PlanConfig,
                now: datetime | None = None) -> MemberData:
    merges: dict[str, str] = {}
    for source, tag in cfg.merge_fields.items():
        value = (facts.first_name if source == "first_name"
                 else facts.last_name if source == "last_name"
                 else facts.attributes.get(source))
        if value is not None:
            text = str(value)
            if text:
                merges[tag] = text
    lists = facts.lists
    if cfg.sync_tags:
        wanted = cfg.tag_lists
        tags = tuple(sorted([n for n in lists if n in wanted]))
    else:
        tags = ()
    if cfg.basis == "soft_opt_in" and cfg.category_tags:
        # Similar products only (rule 11): the categories the customer bought, as tags.
        tags = tuple(sorted({*tags, *decision.categories}))
    proof = decision.proof
    # Positional, in MemberData's field order (built for every contact planned).
    if proof is None:
        signup_ip = signup_at = opt_ip = opt_at = None
    else:
        signup_ip, signup_at = proof.signup_ip, stamp(proof.signup_at)
        opt_ip, opt_at = proof.confirmed_ip, stamp(proof.confirmed_at)
    return MemberData(
        facts.email, merges, tags, signup_ip, signup_at, opt_ip, opt_at,
        permissions_of(facts, cfg, now) if (cfg.permissions and now is not None) else {},
        {interest: name in lists for name, interest in cfg.interests.items()})
