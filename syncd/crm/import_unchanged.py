"""Which lines of a re-import change nothing, found without decoding them: a line is
skipped when its contact holds the line's content hash from an earlier import and nothing
changed the contact since (syncd.store.import_marks). Such a line passed every check of
this version and configuration when it was applied (the hash covers both:
syncd.crm.import_format.hash_prefix), so neither pass decodes or checks it again. And the
marks the apply pass leaves: with a contact's INSERT when it creates one, else by UPDATE."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy.orm import Session

from syncd.addresses import Address, parse_address
from syncd.crm.import_format import content_hash
from syncd.crm.import_readers import Line
from syncd.crm.import_spool import Checked
from syncd.errors import InputError
from syncd.store import contacts, import_marks


def hashes(lines: list[Line], prefix: bytes, refused: Collection[int]) -> dict[int, str]:
    """Each line's content hash by line number; not of refused lines, nor of lines that
    cannot be decoded (they match no mark)."""
    return {line.number: content_hash(prefix, line.content) for line in lines
            if line.content is not None and line.number not in refused}


def to_apply(session: Session, chunk: list[Line], digests: dict[int, str],
             refused: Collection[int], spooled: Mapping[int, str]
             ) -> tuple[list[tuple[int, object | None]], dict[int, Address], int]:
    """(the chunk's lines to apply in file order: decoded, or None for a line the check
    pass spooled, whose address `spooled` gives; the addresses parsed for the decoded
    ones, handed to each line's check so it is parsed once per pass; how many were
    skipped). A line of an address that another line of the chunk applies is applied
    too: the other may change what it finds. Across chunks the marks the chunk before
    left tell."""
    holders = import_marks.unchanged(session, digests.values())
    held = {n: holders[digest] for n, digest in digests.items() if digest in holders}
    decoded: dict[int, tuple[int, object | None]] = {}
    keys: dict[int, str] = {}
    parsed: dict[int, Address] = {}
    for line in chunk:
        if line.number in held or line.number in refused:
            continue
        if line.number in spooled:
            decoded[line.number] = (line.number, None)
            keys[line.number] = spooled[line.number]
            continue
        item = line.item()
        if item is None:
            continue
        decoded[line.number] = item
        address = _address(item[1])
        if address is not None:
            parsed[line.number] = address
            keys[line.number] = address.key
    applied = set(keys.values())
    items: list[tuple[int, object | None]] = []
    for line in chunk:
        if line.number in held and held[line.number] in applied:
            found = (line.number, None) if line.number in spooled else line.item()
            if found is not None:
                items.append(found)
        elif line.number in decoded:
            items.append(decoded[line.number])
    return items, parsed, sum(key not in applied for key in held.values())


def _address(raw: object) -> Address | None:
    email = raw.get("email") if isinstance(raw, dict) else None
    try:
        return parse_address(email) if isinstance(email, str) else None
    except InputError:
        return None


def creation_marks(records: Sequence[Checked], hashes: Mapping[int, str]
                   ) -> dict[str, tuple[int, str]]:
    """Per address: the revision bumps the apply pass's writes give its contact if every
    one is new, as a contact the chunk creates finds them (syncd.store.contacts
    `bumps_to_come`: one per list, per consent event and one for its purchases), and the
    content hash of its last line (the import mark it is created with). A count that
    does not come true (an event stored already, an address on two lines of the chunk,
    the same event twice on a line) only costs the UPDATEs it would have saved."""
    found: dict[str, tuple[int, str]] = {}
    for record in records:
        key = record.address.key
        bumps = len(set(record.lists)) + len(record.records) + bool(record.purchases)
        found[key] = (found[key][0] + bumps if key in found else bumps, hashes[record.line])
    return found


def settle(session: Session, records: Sequence[Checked], refs: Sequence[contacts.ContactRef],
           hashes: Mapping[int, str]) -> None:
    """The chunk's revision bumps and import marks written, after its other writes (the
    mark holds the revision the chunk leaves): the last line per contact is what it now
    holds. A contact created with its mark whose bumps all came needs neither."""
    settled = {ref.id for ref in refs if ref.marked and not ref.bumps}
    contacts.apply_revision_bumps(session, refs)
    import_marks.mark(session, {ref.id: hashes[record.line] for record, ref
                                in zip(records, refs, strict=True)
                                if ref.id not in settled}.items())
