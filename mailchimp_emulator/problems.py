"""Mailchimp's error documents (`application/problem+json`) as one exception type.

Every error Mailchimp answers carries `type`, `title`, `status`, `detail` and
`instance`, plus `errors[{field, message}]` on validation failures; the batch endpoint
folds the same information into its `errors[]` items instead.
"""

from __future__ import annotations

import uuid
from typing import Any

ERROR_DOCS = "https://mailchimp.com/developer/marketing/docs/errors/"


class ApiProblem(Exception):
    """An error answer: raised by the audience rules, rendered by the HTTP layer."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": ERROR_DOCS,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": str(uuid.uuid4()),
        }
        if self.errors:
            doc["errors"] = self.errors
        return doc


def invalid_resource(detail: str, errors: list[dict[str, str]] | None = None) -> ApiProblem:
    return ApiProblem(400, "Invalid Resource", detail, errors)


def not_found() -> ApiProblem:
    return ApiProblem(404, "Resource Not Found", "The requested resource could not be found.")


def field_error(field: str, message: str) -> ApiProblem:
    return invalid_resource(
        "The resource submitted could not be validated. "
        "For field-specific details, see the 'errors' array.",
        [{"field": field, "message": message}],
    )


def too_many_requests() -> ApiProblem:
    # Mailchimp allows 10 simultaneous connections per account and documents no Retry-After.
    return ApiProblem(
        429,
        "Too Many Requests",
        "You have exceeded the limit of 10 simultaneous connections.",
    )


def api_key_invalid() -> ApiProblem:
    return ApiProblem(
        401,
        "API Key Invalid",
        "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
    )
