"""Import contacts, list memberships and consent evidence from a JSONL or CSV file.

Two streaming passes keep memory bounded for any file size: the first validates every
line, keeps only the errors (at most `MAX_REPORTED_ERRORS`, plus a count) and spools the
records it accepted (import_spool.py); the second applies those in chunked transactions,
without decoding or checking them again. By default one bad line means nothing is
written; `skip_invalid` applies the valid lines and reports the rest.

A `confirmed` consent must confirm a valid sign-up: a `given` of the same purpose at or
before it, on the same line, on another valid line of the file, or already in the ledger.
Otherwise its line is refused: a confirmation of a sign-up that was refused (pre-ticked)
or never recorded is no evidence of consent (rule 4). Such lines are rare; they are
resolved after the first pass, by one more pass over the file that collects only their
sign-ups, then one query of the ledger.

Re-importing a file changes nothing: consent events are deduplicated by content (ledger),
list additions are idempotent and unchanged contact fields do not bump the revision.
History is never rewritten: older events are appended, and the policy decides by time.
An import creates a contact even for a suppressed address: the data is kept as data, and
the policy blocks the push (I10). Formats: syncd/crm/import_readers.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from syncd import logs
from syncd.addresses import Address
from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.context import AppContext
from syncd.crm import import_purchases, import_spool, import_unchanged
from syncd.crm.import_confirmations import Confirmation, refuse_unsupported, unconfirmed_sign_ups
from syncd.crm.import_format import ImportRecord, LineError, Vocabulary, check, hash_prefix
from syncd.crm.import_readers import (
    FileProblem,
    Format,
    Line,
    Unreadable,
    batches,
    guess_format,
    read_lines,
)
from syncd.crm.import_report import ImportReport
from syncd.errors import InputError
from syncd.schema import ConsentEvent, Contact
from syncd.store import bulk_connection, contacts, dialect, import_marks, lists

CHUNK_LINES = 2000
# SQLite page cache for the apply pass (KiB): bounded, and returned after the import.
SQLITE_CACHE_KIB = 64 * 1024
ACTOR = "import"
# An import that created this many contacts has the tables it grew analysed afterwards
# (PostgreSQL: syncd.store.dialect.refresh_statistics).
ANALYZE_AFTER_CREATED = 10_000
GROWN_TABLES = tuple(cast(Table, model.__table__) for model in (Contact, ConsentEvent))

log = logs.get_logger(__name__)


# Called with (lines read, lines in the file or 0 when unknown, pass name).
ProgressHook = Callable[[int, int, str], None]


def import_file(ctx: AppContext, path: Path, *, fmt: Format | None = None,
                skip_invalid: bool = False, now: datetime | None = None,
                chunk_lines: int = CHUNK_LINES,
                progress: ProgressHook | None = None) -> ImportReport:
    """Validate the whole file, then apply it (or its valid lines with `skip_invalid`).
    Raises InputError when the file itself cannot be read or holds no record."""
    chosen: Format = fmt or guess_format(path)
    vocabulary = Vocabulary(lists=frozenset(ctx.settings.lists),
                            purposes=ctx.settings.purposes)
    report = ImportReport()
    with import_spool.spool() as spool:
        _check_and_apply(ctx, path, chosen, report, spool, vocabulary=vocabulary,
                         now=now or utcnow(), skip_invalid=skip_invalid,
                         chunk_lines=chunk_lines, progress=progress)
    if report.applied:
        log.info("import_applied", lines=report.lines, valid=report.valid,
                 invalid=report.invalid, created=report.contacts_created,
                 updated=report.contacts_updated, consents=report.consents_added,
                 memberships=report.memberships_added)
    return report


def _check_and_apply(ctx: AppContext, path: Path, chosen: Format, report: ImportReport,
                     spool: import_spool.Spool, *, vocabulary: Vocabulary, now: datetime,
                     skip_invalid: bool, chunk_lines: int, progress: ProgressHook | None
                     ) -> None:
    """The check pass (every accepted record spooled), then the apply pass."""
    prefix = hash_prefix(vocabulary)
    pending: list[Confirmation] = []
    held = 0  # lines their contacts hold unchanged, by the check pass's look-ups
    try:
        for lines in batches(read_lines(path, chosen), chunk_lines):
            # Short sessions: on SQLite every transaction takes the write lock.
            hashes = import_unchanged.hashes(lines, prefix, report.refused_lines)
            with ctx.sessions() as session:
                known = import_marks.unchanged(session, hashes.values())
            # A line a contact holds unchanged passed these checks when it was applied.
            batch = [r for line in lines if hashes.get(line.number) not in known
                     for r in _line_records(line, vocabulary, now, report)]
            with ctx.sessions() as session:
                conflicts = _crm_id_conflicts(session, batch, within=True)
            spool.write(batch)  # a line refused later is skipped by the apply pass
            for problem in conflicts:
                report.note([problem])
                report.refused_lines.add(problem.line)
            unchanged = sum(hashes.get(line.number) in known for line in lines)
            held += unchanged
            report.lines += unchanged
            report.valid += unchanged + len(batch) - len(conflicts)
            pending.extend(c for record in batch for c in unconfirmed_sign_ups(record))
            if progress is not None:
                progress(report.lines, 0, "checking")
        if report.lines == 0:
            raise InputError(f"{path}: the file holds no records")
        refuse_unsupported(ctx, pending, report, lambda: _records(
            path, chosen, vocabulary, now, ImportReport()))
        if report.invalid and (not skip_invalid or report.valid == 0):
            log.warning("import_refused", lines=report.lines, invalid=report.invalid)
            return
        if spool.written == 0:
            # Every valid line is one its contact held unchanged when its chunk was
            # looked up: the apply pass would write nothing, so the file is not read a
            # second time. A contact changed since is as if changed after this import.
            report.unchanged = held
            report.applied = True
            return
        _apply(ctx, read_lines(path, chosen), report, spool, vocabulary=vocabulary,
               now=now, prefix=prefix, chunk_lines=chunk_lines, progress=progress)
    except FileProblem as exc:
        raise InputError(str(exc)) from None
    report.applied = True


def _records(path: Path, fmt: Format, vocabulary: Vocabulary, now: datetime,
             report: ImportReport) -> Iterator[ImportRecord]:
    return (r for line in read_lines(path, fmt) for r in _line_records(line, vocabulary,
                                                                        now, report))


def _line_records(line: Line, vocabulary: Vocabulary, now: datetime,
                  report: ImportReport) -> list[ImportRecord]:
    """The line decoded and checked: a record (a list of one), or none (refused, noted in
    `report`, or blank)."""
    item = line.item()
    if item is None:
        return []
    report.lines += 1
    return _checked(item[0], item[1], vocabulary, now, report)


def _crm_id_conflicts(session: Session, batch: list[ImportRecord] | list[import_spool.Checked], *,
                      within: bool = False) -> list[LineError]:
    """Lines whose crm_id already belongs to a contact with another address (in the
    database, or with `within` also on an earlier line of the batch)."""
    claims = [(r.line, r.address, r.data.crm_id if isinstance(r, ImportRecord) else r.crm_id)
              for r in batch]
    holders = contacts.crm_id_holders(session, (c for _, _, c in claims if c is not None))
    problems = []
    for line, address, crm_id in claims:
        if crm_id is None:
            continue
        holder = holders.get(crm_id)
        if holder is not None and holder != address.key:
            problems.append(LineError(line, "crm_id", "already belongs to another contact"))
        elif within:
            holders[crm_id] = address.key
    return problems


def _apply(ctx: AppContext, lines: Iterator[Line], report: ImportReport,
           spool: import_spool.Spool, *, vocabulary: Vocabulary, now: datetime,
           prefix: bytes, chunk_lines: int, progress: ProgressHook | None = None) -> None:
    """One connection for the whole pass, one transaction per chunk of lines. On SQLite
    the page cache is raised for this connection only and restored after: the unique
    indexes the import inserts into (email_key, dedupe_key: random order) outgrow the
    2 MB default and every chunk then re-read them from disk. On PostgreSQL every
    statement is planned with its own values and the tables' sizes of the moment, never
    from a plan kept since the first chunks (the duplicate look-up then scanned the whole
    ledger once per chunk: docs/performance.md). Durability settings stay untouched."""
    with ctx.engine.connect() as connection, bulk_connection.sqlite_page_cache(
            connection, SQLITE_CACHE_KIB), bulk_connection.custom_plans(connection):
        done = 0
        for chunk in batches(lines, chunk_lines):
            with Session(bind=connection) as session, session.begin():
                _apply_chunk(session, chunk, spool.take(chunk[-1].number), vocabulary,
                             now, prefix=prefix, report=report)
            done += len(chunk)
            if progress is not None:
                progress(done, report.lines, "importing")
        if report.contacts_created >= ANALYZE_AFTER_CREATED:
            with connection.begin():
                dialect.refresh_statistics(connection, GROWN_TABLES)


def _apply_chunk(session: Session, chunk: list[Line], spooled: dict[int, import_spool.Checked],
                 vocabulary: Vocabulary, now: datetime, *, prefix: bytes,
                 report: ImportReport) -> None:
    """One transaction: unchanged lines skipped, the others' spooled records written
    (contacts, memberships, consent events, revisions, import marks) in a few multi-row
    statements each (per-line statements or ORM objects cost more than the SQL). A
    per-line hook goes after `contacts.upsert`, where each record meets its contact."""
    hashes = import_unchanged.hashes(chunk, prefix, report.refused_lines)
    items, parsed, unchanged = import_unchanged.to_apply(
        session, chunk, hashes, report.refused_lines,
        {number: record.address.key for number, record in spooled.items()})
    report.unchanged += unchanged
    scratch = ImportReport()  # pass one counted and reported every problem already
    records: list[import_spool.Checked] = []
    for number, raw in items:
        if raw is None:
            records.append(spooled[number])
        else:  # not spooled: the line matched a mark in the check pass
            records.extend(import_spool.checked(r) for r in _checked(
                number, raw, vocabulary, now, scratch, address=parsed.get(number)))
    if not records:
        return
    known_lists = lists.all_lists(session)
    for problem in _crm_id_conflicts(session, records, within=True):
        # Found only now when two lines of the same file claim one crm_id.
        report.valid -= 1
        report.note([problem])
        report.refused_lines.add(problem.line)
    records = [r for r in records if r.line not in report.refused_lines]
    # A contact this creates gets its final revision and import mark in its INSERT.
    marks = import_unchanged.creation_marks(records, hashes)
    written = contacts.upsert(session, [contacts.ContactData(
        address=r.address, first_name=r.first_name, last_name=r.last_name,
        crm_id=r.crm_id, attributes=r.attributes, is_customer=r.customer,
        bumps_to_come=marks[r.address.key][0], import_hash=marks[r.address.key][1])
        for r in records], actor=ACTOR)
    for _contact, created, changed in written:
        report.contacts_created += created
        report.contacts_updated += changed and not created
    report.memberships_added += len(lists.add_memberships(session, [
        lists.Membership(ref, known_lists[name].id, name)
        for record, (ref, _, _) in zip(records, written, strict=True)
        for name in record.lists], actor=ACTOR, source=ACTOR))
    report.consents_added += ledger.append_many(session, [
        (ref, consent)
        for record, (ref, _, _) in zip(records, written, strict=True)
        for consent in record.records], actor=ACTOR)
    import_purchases.apply(session, [(ref, record.purchases) for record, (ref, _, _)
                                     in zip(records, written, strict=True)
                                     if record.purchases])
    import_unchanged.settle(session, records, [ref for ref, _, _ in written], hashes)


def _checked(number: int, raw: object, vocabulary: Vocabulary, now: datetime,
             report: ImportReport, *, address: Address | None = None
             ) -> list[ImportRecord]:
    """The line as a record (a list of one), or none when it is refused. `address`: the
    line's address, parsed already (not parsed again)."""
    outcome = (raw.errors if isinstance(raw, Unreadable)
               else check(number, raw, vocabulary, now, address=address))
    if isinstance(outcome, ImportRecord):
        return [outcome]
    report.note(outcome)
    return []
