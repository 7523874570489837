"""What an import did, line by line counted: the report `syncd import` prints (its JSON
form) and the first MAX_REPORTED_ERRORS problems it names."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.crm.import_format import LineError

MAX_REPORTED_ERRORS = 100


@dataclass
class ImportReport:
    lines: int = 0
    valid: int = 0
    invalid: int = 0
    errors: list[LineError] = field(default_factory=list)
    applied: bool = False
    contacts_created: int = 0
    contacts_updated: int = 0
    consents_added: int = 0
    memberships_added: int = 0
    # Valid lines skipped in the apply pass: the contact already holds exactly that line.
    unchanged: int = 0

    @property
    def errors_not_shown(self) -> int:
        return self.invalid_errors_total - len(self.errors)

    invalid_errors_total: int = 0
    # Lines refused after the line checks (crm_id conflicts); few, kept for pass two.
    refused_lines: set[int] = field(default_factory=set)

    def note(self, errors: list[LineError]) -> None:
        self.invalid += 1
        self.invalid_errors_total += len(errors)
        room = MAX_REPORTED_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines, "valid": self.valid, "invalid": self.invalid,
            "applied": self.applied, "contacts_created": self.contacts_created,
            "contacts_updated": self.contacts_updated, "consents_added": self.consents_added,
            "memberships_added": self.memberships_added, "unchanged": self.unchanged,
            "errors": [{"line": e.line, "field": e.field, "message": e.message}
                       for e in self.errors],
            "errors_not_shown": self.errors_not_shown,
        }
