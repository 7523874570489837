"""Reading a request body within a size limit, for every route that takes one (the
webhook endpoint, the sign-up form, the sign-up API)."""

from __future__ import annotations

from fastapi import Request


class BodyTooLarge(Exception):
    """The body is, or declares to be, larger than the route accepts."""


class BadBody(Exception):
    """The body cannot be read as what it claims to be; the message says why."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed `limit`: by its Content-Length
    before reading, and by counting for chunked bodies."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadBody("invalid Content-Length")
        if int(declared) > limit:
            raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
