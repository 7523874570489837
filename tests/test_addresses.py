"""The cheap check for plain ASCII addresses agrees with the full validator
(syncd.addresses): same address, same normal form, same refusal and message."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd.addresses import MAX_ADDRESS_LENGTH, Address, _validated, parse_address, plain_ascii
from syncd.errors import InputError

# Characters that make addresses interesting: atext, dots, @, hyphens, quotes, brackets,
# spaces, upper case, digits, and a few non-ASCII letters and marks.
_ALPHABET = st.sampled_from([*"abcxyzABCXYZ0129.-_+!#$%&'*/=?^`{|}~@\"()<>[]\\ ,;:",
                             "é", "ü", "ß", "\u0301", "\u200b", "ı", "K"])
_LABEL = st.text(st.sampled_from(list("abzAZ09-")), min_size=1, max_size=8)
_TLD = st.sampled_from(["org", "de", "COM", "nl", "local", "test", "invalid", "x1", "a",
                        "onion", "arpa", "xn--p1ai", "-ab", "ab-", "localhost"])
_DOMAIN = st.builds(lambda labels, tld: ".".join([*labels, tld]),
                    st.lists(_LABEL, min_size=0, max_size=3), _TLD)
_LOCAL = st.text(st.sampled_from(list("abcXYZ09._-+!#'`{|}~/=?^$%&*\"é")), min_size=0,
                 max_size=12)
_ADDRESSES = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN),
    st.text(_ALPHABET, max_size=40),
    st.emails(),
)


def _full(raw: str) -> Address | str:
    """What parse_address decided before the cheap check: always the full validator."""
    display = raw.strip()
    if not display:
        return "email address is empty"
    if len(display) > MAX_ADDRESS_LENGTH:
        return f"email address is longer than {MAX_ADDRESS_LENGTH} characters"
    try:
        return _validated(display)
    except InputError as exc:
        return str(exc)


def _outcome(raw: str) -> Address | str:
    try:
        return parse_address(raw)
    except InputError as exc:
        return str(exc)


@settings(max_examples=3000, deadline=None)
@given(_ADDRESSES)
@example("person1@example.org")
@example("A.B+c@Sub.Example.COM")
@example("a@xn--bcher-kva.example")
@example("a@ab--cd.example")
@example("info@Example.ORG")
@example("a@b.c1")
@example(" a@b.de ")
@example("a@" + "b" * 64 + ".de")
@example("a@" + ".".join(["b" * 60] * 5) + ".de")
def test_parse_address_agrees_with_the_full_validator(raw: str) -> None:
    assert _outcome(raw) == _full(raw)


@settings(max_examples=1000, deadline=None)
@given(st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN))
def test_every_address_the_cheap_check_takes_is_accepted_unchanged_but_for_case(
        raw: str) -> None:
    if plain_ascii(raw):
        assert _validated(raw) == Address(key=raw.lower(), display=raw)


def test_the_cheap_check_takes_a_common_address() -> None:
    assert plain_ascii("Jane.Doe+news@mail.example.org")


def test_the_cheap_check_leaves_punycode_and_special_use_domains_to_the_full_validator(
        ) -> None:
    assert not plain_ascii("a@xn--bcher-kva.example")
    assert not plain_ascii("a@host.local")
