"""The page machinery others reuse (syncd/signup/pages.py): language from
Accept-Language, autoescape, an operator's templates in front of syncd's, and the
headers that keep a token in a URL from leaking."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from syncd.signup.pages import Pages, negotiate


@pytest.mark.parametrize(("header", "expected"), [
    ("en-GB,en;q=0.9,nl;q=0.8", "en"),
    ("nl-NL,nl;q=0.9,en;q=0.8", "nl"),
    ("de-DE,de;q=0.9,en;q=0.5", "en"),
    ("fr-FR", "nl"),
    (None, "nl"),
    ("en;q=0.2,nl;q=0.7", "nl"),
    ("en;q=garbage,nl;q=0.1", "nl"),
    ("*", "nl"),
])
def test_the_language_follows_accept_language(header: str | None, expected: str) -> None:
    assert negotiate(header, "nl") == expected


def test_values_are_escaped_in_html_pages() -> None:
    html = Pages().render("confirm.html", "en", purposes=["<script>alert(1)</script>"])

    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_an_operators_template_replaces_syncds_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "syncd.css").write_text("body { color: #000; } /* ours */", encoding="utf-8")
    (tmp_path / "confirm.html").write_text("{% extends 'base.html' %}{% block content %}"
                                           "{{ t('Eigen tekst', 'Own text') }}{% endblock %}",
                                           encoding="utf-8")
    pages = Pages(str(tmp_path))

    assert "Own text" in pages.render("confirm.html", "en", purposes=[])
    assert "Aanmelden" in pages.render("signup_form.html", "nl", purposes=[],
                                       honeypot="website", text_version="v",
                                       privacy_notice_version="p")


def test_pages_load_nothing_from_elsewhere_and_leak_no_referrer(site: str) -> None:
    page = requests.get(site + "/signup", timeout=10)
    css = requests.get(site + "/assets/syncd.css", timeout=10)

    assert "http" not in page.text.split("<main", 1)[0].replace('content="no-referrer"', "")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert (css.status_code, css.headers["Content-Type"].split(";")[0]) == (200, "text/css")
