"""The people of the sample CRM (sample.jsonl): one example of each consent rule, what the
rules say must happen to them, and why. The demo's checks and the README's table read
this one table, so an example cannot be lost silently (tests/demo check the file)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

SAMPLE_NAME = "sample.jsonl"
# The day the sample's purchase dates were written against (sample_text moves them).
SAMPLE_WRITTEN_ON = date(2026, 11, 1)


@dataclass(frozen=True)
class Example:
    email: str
    role: str  # who this is, in a few words
    rule: str  # the consent rule (docs/consent-rules.md) it shows
    law: str  # the article it rests on
    # Expected newsletter standing after the import (policy.Standing); None: refused there.
    standing: str | None
    # After the first sync: "subscribed" (in the audience), "parked" (Mailchimp refused
    # it), "no" (never sent) or "refused at import".
    pushed: str
    lists: tuple[str, ...] = ()
    # The offers target (soft opt-in basis): the product categories they are tagged with
    # when it admits them; None: it must not admit them.
    offers: tuple[str, ...] | None = None

    @property
    def eligible(self) -> bool:
        return self.standing in ("confirmed", "re_consent")


ANNA = Example(
    "anna.jansen@example.com", "confirmed subscriber, Dutch newsletter (also offers)",
    "rule 3: double opt-in confirmed, so pushed", "GDPR Art. 6(1)(a), 7(1)",
    "confirmed", "subscribed", ("newsletter-nl", "offers"))
BEN = Example(
    "ben.smith@example.com", "confirmed subscriber, English newsletter",
    "rule 3: double opt-in confirmed, so pushed", "GDPR Art. 6(1)(a), 7(1)",
    "confirmed", "subscribed", ("newsletter-en",))
CARLA = Example(
    "carla.visser@example.com", "signed up, never clicked the confirmation link",
    "rule 3: unconfirmed is not pushed", "GDPR Art. 7(1) (showing consent)",
    "unconfirmed", "no", ("newsletter-nl",))
DAAN = Example(
    "daan.bakker@example.com", "downloaded the e-book",
    "rule 1: consent for the e-book is not newsletter consent",
    "GDPR Art. 6(1)(a), Recital 32", "other_purpose_only", "no", ("ebook-leads",))
EVA = Example(
    "eva.mulder@example.com", "newsletter box pre-ticked at checkout",
    "rule 2: a pre-ticked box is not consent; refused at import",
    "GDPR Art. 4(11), Recital 32; CJEU Planet49 C-673/17", None, "refused at import")
FRANK = Example(
    "frank.deboer@example.com", "paying customer, bought coffee (soft opt-in for offers)",
    "rule 7: soft opt-in is not newsletter consent",
    "ePrivacy Art. 13(2); Telecommunicatiewet art. 11.7", "soft_opt_in_only", "no",
    ("offers",), offers=("coffee",))
GINA = Example(
    "gina.peters@example.com", "confirmed once, then withdrew (still on a CRM list)",
    "rule 5: a withdrawal beats the older consent", "GDPR Art. 7(3), 21(2)",
    "withdrawn", "no", ("newsletter-nl",))
TEST = Example(
    "test@example.com", "confirmed, but Mailchimp thinks the address is fake",
    "Mailchimp's refusal is parked with its reason, not retried blindly",
    "GDPR Art. 5(1)(d) (accuracy)", "confirmed", "parked", ("newsletter-en",))

HUGO = Example(
    "hugo.smit@example.com", "asked for a quote, got a free sample: never paid",
    "rule 11: a quote or a free product does not make a customer",
    "ePrivacy Art. 13(2) (a sale); Telecommunicatiewet art. 11.7", "no_consent", "no")

CAST: tuple[Example, ...] = (ANNA, BEN, CARLA, DAAN, EVA, FRANK, GINA, TEST, HUGO)
# The offers step: the paying customer who reaches offers and must not reach the
# newsletter; people who must not reach offers, each for its reason; the confirmed
# subscriber whose GDPR permission is switched on.
CUSTOMER = FRANK
NOT_OFFERS = (HUGO, BEN, ANNA)
PERMISSION_ON = BEN
# The confirmed subscriber who unsubscribes in step 3.
UNSUBSCRIBER = ANNA
# The address the emulator refuses (Mailchimp: "looks fake or invalid").
REFUSED_BY_MAILCHIMP = TEST
# The line refused at import.
PRETICKED = EVA


def by_email() -> dict[str, Example]:
    return {example.email: example for example in CAST}


def sample_path() -> Path:
    """The shipped sample (package data)."""
    return Path(str(resources.files("syncd.demo").joinpath(SAMPLE_NAME)))


def sample_text(today: date) -> str:
    """The sample as the demo imports it on `today`: every purchase moved by as many days
    as `today` is past SAMPLE_WRITTEN_ON, so a purchase is always as recent as the sample
    says (the soft opt-in window, rule 11, never runs out as time passes; a purchase is
    never in the future either, which the import refuses). Line numbers stay as shipped."""
    shift = today - SAMPLE_WRITTEN_ON
    lines = []
    for line in sample_path().read_text("utf-8").splitlines():
        if not line.strip():
            lines.append(line)
            continue
        doc = json.loads(line)
        for purchase in doc.get("purchases") or []:
            purchase["date"] = (date.fromisoformat(purchase["date"]) + shift).isoformat()
        lines.append(json.dumps(doc, ensure_ascii=False))
    return "\n".join(lines) + "\n"
