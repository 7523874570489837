"""Reading import files one record at a time (bounded memory for any file size).

JSONL: one JSON object per line (docs/import-format.md). Blank lines are skipped; a UTF-8
byte order mark and CRLF line ends are accepted. A key that appears twice in one object
is refused (JSON parsers disagree on which value wins: "prechecked": true, "prechecked":
false must not become consent). A line longer than MAX_LINE_BYTES is refused without
being kept in memory (a CSV file with one is refused whole: its rows can span lines).

CSV (header row required; UTF-8, BOM and CRLF accepted). Column mapping to a JSONL line:

    email, first_name, last_name, crm_id   -> the same keys (empty cell = not given)
    customer                                -> `customer`: true/false, yes/no or 1/0
                                               (empty = not given)
    lists                                   -> `lists`: names separated by `;`
    attr_<name>                             -> `attributes[<name>]` (empty cell = not given)
    purpose, action, at, source, form_url, text_version, privacy_notice_version, ip,
    user_agent, prechecked, confirmation_token_hash
                                            -> ONE entry of `consents` (when `purpose` or
                                               `action` is filled); `prechecked` as `customer`

A contact with several consent events takes several rows with the same email; each row is
validated and applied like a JSONL line. Any other column is refused (named in the error).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from syncd.crm.import_format import LineError

Format = Literal["jsonl", "csv"]
_T = TypeVar("_T")

CONTACT_COLUMNS = ("email", "first_name", "last_name", "crm_id")
CONSENT_COLUMNS = ("purpose", "action", "at", "source", "form_url", "text_version",
                   "privacy_notice_version", "ip", "user_agent", "prechecked",
                   "confirmation_token_hash")
ATTRIBUTE_PREFIX = "attr_"
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
# A contact with a long consent history fits in a few kilobytes.
MAX_LINE_BYTES = 256 * 1024
_READ_CHUNK = 64 * 1024
# A CSV row's content for the re-import's hash: its line as canonical JSON.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _TooLong:
    """A line that exceeded MAX_LINE_BYTES (skipped to its end, not kept)."""


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


# Built once: json.loads with a hook builds a decoder per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)


@dataclass(frozen=True)
class Unreadable:
    """A line that could not be decoded into a value; its errors."""

    errors: list[LineError]


# (line number, the decoded value or why it could not be decoded)
Item = tuple[int, Any]


class FileProblem(Exception):
    """The file as a whole cannot be read (missing, wrong encoding, bad header)."""


def batches(records: Iterator[_T], size: int) -> Iterator[list[_T]]:
    """The items in lists of `size` (the last one shorter), read lazily."""
    batch: list[_T] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def guess_format(path: Path) -> Format:
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


class Line:
    """One line of the file, decoded only when asked: a re-import skips most lines by the
    hash of `content` (syncd.store.import_marks) without decoding them. `content` is what
    that hash covers: a JSONL line as written (without its line end), a CSV row as canonical JSON of
    the line it maps to; None for a line that cannot be decoded."""

    __slots__ = ("_item", "content", "number")

    def __init__(self, number: int, content: bytes | None, item: Item | None = None) -> None:
        self.number, self.content, self._item = number, content, item

    def item(self) -> Item | None:
        """The decoded line; None for a JSONL line of nothing but (Unicode) spaces."""
        if self._item is None and self.content is not None:
            return _decode_jsonl(self.number, self.content)
        return self._item


def read_lines(path: Path, fmt: Format) -> Iterator[Line]:
    if not path.is_file():
        raise FileProblem(f"{path}: no such file")
    if fmt == "csv":
        return (Line(number, None if isinstance(value, Unreadable) else
                     _CANONICAL.encode(value).encode(), (number, value))
                for number, value in _read_csv(path))
    return _jsonl_lines(path)


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes | _TooLong]]:
    """Numbered lines, without the UTF-8 byte order mark some spreadsheet tools write;
    a line over MAX_LINE_BYTES is read to its end in chunks and given as _TooLong."""
    with path.open("rb") as stream:
        number = 0
        while raw := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := stream.readline(_READ_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield number, _TooLong()
                continue
            yield number, (raw[3:] if number == 1 and raw.startswith(b"\xef\xbb\xbf") else raw)


def _too_long(number: int) -> LineError:
    return LineError(number, None, f"longer than {MAX_LINE_BYTES} bytes")


def _jsonl_lines(path: Path) -> Iterator[Line]:
    for number, raw in _raw_lines(path):
        if isinstance(raw, _TooLong):
            yield Line(number, None, (number, Unreadable([_too_long(number)])))
        elif raw.strip():  # blank lines are skipped
            yield Line(number, raw.rstrip())


def _decode_jsonl(number: int, raw: bytes) -> Item | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return number, Unreadable([LineError(number, None, "not valid UTF-8")])
    if not text.strip():
        return None
    try:
        return number, _DECODER.decode(text)
    except _DuplicateKey as exc:
        return number, Unreadable([LineError(number, exc.key[:64],
                                             "the key appears twice in one object")])
    except json.JSONDecodeError as exc:
        # The decoder's message names a position, never the content.
        return number, Unreadable([LineError(number, None, f"not valid JSON: {exc.msg} "
                                                           f"(column {exc.colno})")])
    except RecursionError:
        return number, Unreadable([LineError(number, None,
                                             "not valid JSON: nested too deeply")])


def _decoded_lines(path: Path) -> Iterator[str]:
    for number, raw in _raw_lines(path):
        if isinstance(raw, _TooLong):
            raise FileProblem(f"{path}: {_too_long(number)}")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FileProblem(f"{path}: line {number}: not valid UTF-8") from None


def _read_csv(path: Path) -> Iterator[Item]:
    reader = csv.reader(_decoded_lines(path), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise FileProblem(f"{path}: line 1: not valid CSV: {exc}") from None
    if header is None:
        return
    columns = [name.strip() for name in header]
    unknown = [name for name in columns if name not in CONTACT_COLUMNS
               and name not in CONSENT_COLUMNS and name not in ("customer", "lists")
               and not (name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX))]
    if unknown:
        raise FileProblem(f"{path}: line 1 (header): unknown column(s) {', '.join(unknown)}; "
                          "see docs/import-format.md")
    if len(set(columns)) != len(columns):
        raise FileProblem(f"{path}: line 1 (header): a column appears twice")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, Unreadable([LineError(reader.line_num, None,
                                                         f"not valid CSV: {exc}")])
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            yield reader.line_num, Unreadable([LineError(
                reader.line_num, None, f"has {len(row)} cells, the header has {len(columns)}")])
            continue
        yield reader.line_num, _row_to_line(reader.line_num, dict(zip(columns, row, strict=True)))


def _row_to_line(line: int, row: dict[str, str]) -> dict[str, Any] | Unreadable:
    errors: list[LineError] = []
    out: dict[str, Any] = {}
    for name in CONTACT_COLUMNS:
        value = row.get(name, "").strip()
        if value or name == "email":
            out[name] = value
    if row.get("customer", "").strip():
        out["customer"] = _flag(line, "customer", row["customer"], errors)
    if row.get("lists", "").strip():
        out["lists"] = [part.strip() for part in row["lists"].split(";") if part.strip()]
    attributes = {name.removeprefix(ATTRIBUTE_PREFIX): value.strip()
                  for name, value in row.items()
                  if name.startswith(ATTRIBUTE_PREFIX) and value.strip()}
    if attributes:
        out["attributes"] = attributes
    consent: dict[str, Any] = {name: row[name].strip() for name in CONSENT_COLUMNS
               if name in row and row[name].strip()}
    if consent.get("purpose") or consent.get("action"):
        if "prechecked" in consent:
            consent["prechecked"] = _flag(line, "prechecked", consent["prechecked"], errors)
        out["consents"] = [consent]
    elif consent:
        errors.append(LineError(line, "purpose", "consent columns are filled but purpose "
                                                 "and action are empty"))
    return Unreadable(errors) if errors else out


def _flag(line: int, column: str, value: str, errors: list[LineError]) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered not in _FALSE:
        errors.append(LineError(line, column, "must be true/false, yes/no or 1/0"))
    return False
