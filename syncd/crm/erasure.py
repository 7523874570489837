"""Erasure (Art. 17 GDPR, rule 8): delete everything syncd holds on a person and keep only a
suppression entry, so that a later import cannot bring them back by mistake (ICO:
"suppress rather than delete"; I10).

What stays: one `suppressions` row (HMAC of the normalised address, purpose "*", reason
"erasure", date) and audit entries without address or contact id. A keyed hash is still
personal data (Dutch AP on pseudonymisation): it is kept only for this purpose.

What goes, in one transaction: the contact, its consent events (each leaves a tombstone
with its place and hashes in the ledger's chain, no content), list memberships and push
state, its earlier audit entries, and the raw bodies of stored webhooks for the address.

The ESP side (Mailchimp's irreversible `delete-permanent`) is a separate step: the caller
passes `ErasureResult.subscriber_hash` to the ESP client of every audience syncd writes
to (`esp_audiences`: each target's). Erasing locally first is safe to
repeat: a second call finds no contact and still returns the hash."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from syncd import logs
from syncd.addresses import parse_address
from syncd.config import Settings
from syncd.config.targets import DEFAULT_TARGET
from syncd.context import AppContext
from syncd.crm import address_history, store, suppression
from syncd.db import transaction
from syncd.esp.protocol import EspReader
from syncd.keys import Keyring
from syncd.store import audit
from syncd.store import inbox as inbox_store
from syncd.store.erasure import remove_contacts

ERASURE_REASON = "erasure"

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class ErasureResult:
    # Mailchimp's member id (MD5 of the lower-cased address) for the ESP-side deletion.
    subscriber_hash: str
    found: bool
    consent_events_deleted: int
    suppression_added: bool


def esp_audiences(settings: Settings) -> dict[str, str | None]:
    """Target name -> audience id of every audience syncd writes to: each target's (an
    erasure reaches them all), or the single-audience setting's (None: not set, so the
    client names what is missing)."""
    return {t.name: t.audience_id for t in settings.sync_targets} or {DEFAULT_TARGET: None}


def statuses_at_esp(ctx: AppContext, email: str) -> dict[str, str]:
    """Target name -> the member's status in that target's audience, for every audience
    that has the person (status_at_esp, asked of each)."""
    found: dict[str, str] = {}
    for name, audience in esp_audiences(ctx.settings).items():
        status = status_at_esp(ctx, email, audience_id=audience)
        if status is not None:
            found[name] = status
    return found


def status_at_esp(ctx: AppContext, email: str, esp: EspReader | None = None, *,
                  audience_id: str | None = None) -> str | None:
    """The member's status as Mailchimp has it now (any status: subscribed, pending,
    unsubscribed, cleaned, archived...), None only when Mailchimp has no such member.
    Asked of Mailchimp, not of syncd's own push state: a member who was in the audience
    before syncd is a member too. Erasing only locally would leave Mailchimp's copy of
    the person's data (Art. 17), and syncd could no longer act on it. `audience_id`: a
    target's (None: the single-audience setting). Raises ConfigError (Mailchimp not
    configured) or EspError (not reachable)."""
    address = parse_address(email)
    owned = esp is None
    if esp is None:
        from syncd.esp.mailchimp import mailchimp_client

        esp = mailchimp_client(ctx.settings, audience_id)
    try:
        member = esp.get_member(address.key)
    finally:
        close = getattr(esp, "close", None) if owned else None
        if close is not None:
            close()
    return member.status if member is not None else None


def erase_in(session: Session, keyring: Keyring, email_key: str, *, actor: str,
             reason: str = ERASURE_REASON) -> tuple[bool, int, bool]:
    """Erase in the caller's transaction: (found, consent events removed, suppression added)."""
    address_hmac = keyring.address_hmac(email_key)
    contact = store.find_contact(session, email_key)
    events = 0
    earlier: list[str] = []
    if contact is not None:
        # One person, every address (I12): their earlier addresses stay out too.
        earlier = address_history.hmacs_of(session, contact.id)
        events = remove_contacts(session, [contact.id], reason=reason)
    # Webhook bodies hold the address; the inbox row stays so a replay is still a duplicate.
    inbox_store.forget_bodies(session, [address_hmac])
    # An earlier "*" entry (an abuse complaint) is moved forward to now, so stale data
    # re-imported later, with a consent after that complaint, stays blocked (I10).
    added = suppression.suppress(session, [address_hmac], purpose=suppression.ALL_PURPOSES,
                                 reason=reason, actor=actor)
    suppression.suppress(session, earlier, purpose=suppression.ALL_PURPOSES, reason=reason,
                         actor=actor)
    audit.record(session, actor=actor, action="contact_erased", contact_id=None,
                 found=contact is not None, consent_events_deleted=events, reason=reason)
    return contact is not None, events, added


def erase_contact(ctx: AppContext, email: str, *, actor: str) -> ErasureResult:
    """Erase the contact for `email` (if any) and suppress the address for every purpose.
    Raises InputError for an address that is not valid."""
    address = parse_address(email)
    with transaction(ctx.sessions) as session:
        found, events, added = erase_in(session, ctx.keyring, address.key, actor=actor)
    log.info("contact_erased", found=found, consent_events_deleted=events)
    return ErasureResult(subscriber_hash=address.subscriber_hash, found=found,
                         consent_events_deleted=events, suppression_added=added)
