"""The process's log handler: by default it writes to the sys.stderr of each record's
moment, so a stream replaced and closed since (a test runner's capture, a CLI runner's)
never turns later records, from any thread, into logging errors."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from syncd import logs


def test_the_default_handler_follows_stderr_when_it_is_replaced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, later = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.configure(level="info", fmt="json")
    first.close()  # the stream of configure() time is gone
    monkeypatch.setattr(sys, "stderr", later)

    logging.getLogger("mail.log").info("a library's record")

    (line,) = later.getvalue().splitlines()  # the record itself, no "Logging error"
    assert json.loads(line)["event"] == "a library's record"


def test_a_stream_given_to_configure_is_the_one_written_to(
        monkeypatch: pytest.MonkeyPatch) -> None:
    given, other = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", other)
    logs.configure(level="info", fmt="json", stream=given)

    logging.getLogger("syncd.test").info("to the given stream")

    assert ("to the given stream" in given.getvalue(), other.getvalue()) == (True, "")
