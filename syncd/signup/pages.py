"""Server-rendered pages and mail bodies, for every page and mail syncd makes.

A Jinja2 environment over syncd's templates (shipped in syncd/service/templates) with an
operator's directory in front (setting pages_template_dir: a file of the same name
replaces syncd's), autoescape on for HTML, and the language from Accept-Language (Dutch
or English). Pages load nothing from elsewhere: one stylesheet, served by syncd. The
sign-up's mails and the service's pages both render here, so it lives below both."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from syncd.config import Settings

LANGUAGES = ("nl", "en")
DEFAULT_LABELS = {
    "newsletter": {"nl": "Nieuwsbrief", "en": "Newsletter"},
    "offers": {"nl": "Aanbiedingen", "en": "Offers"},
    "events": {"nl": "Uitnodigingen voor evenementen", "en": "Event invitations"},
}


def negotiate(accept_language: str | None, default: str = "nl") -> str:
    """The best of nl/en for an Accept-Language header (RFC 9110 quality values); the
    default when the header names neither. Malformed parts are skipped."""
    best, best_q = default, 0.0
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES and primary != "*":
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        quality -= position * 1e-6  # equal quality: the first named wins
        if quality > best_q and quality > 0:
            best, best_q = (default if primary == "*" else primary), quality
    return best


def purpose_label(settings: Settings, purpose: str, language: str) -> str:
    labels = settings.signup_purpose_labels.get(purpose) or DEFAULT_LABELS.get(purpose, {})
    return labels.get(language) or labels.get("en") or purpose


class Pages:
    def __init__(self, template_dir: str | None = None) -> None:
        loaders: list[Any] = []
        if template_dir:
            loaders.append(FileSystemLoader(Path(template_dir)))
        loaders.append(PackageLoader("syncd.service", "templates"))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",),
                                         default_for_string=True, default=False),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    @classmethod
    def for_settings(cls, settings: Settings) -> Pages:
        return _cached(settings.pages_template_dir)

    def render(self, name: str, lang: str, **values: Any) -> str:
        def t(nl: str, en: str) -> str:  # the text in the page's language
            return nl if lang == "nl" else en

        return self.env.get_template(name).render(lang=lang, t=t, **values)


@functools.lru_cache(maxsize=8)
def _cached(template_dir: str | None) -> Pages:
    return Pages(template_dir)
