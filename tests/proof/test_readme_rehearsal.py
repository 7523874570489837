"""Issue 11, finding 8: the README's rehearsal runs as written, with bash, on a machine
where ports 8080 and 8765 are taken (here: held by this test when free). It picks free
ports and waits in bounded loops; at the end Ben's unsubscribe was delivered and purged."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import REPO

TAKEN = (8080, 8765)


def rehearsal() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Rehearse it against the emulator"):]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "the README has no rehearsal block"
    return found.group(1)


@contextlib.contextmanager
def ports_taken(ports: tuple[int, ...]) -> Iterator[None]:
    held = []
    for port in ports:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            held.append(sock)
        except OSError:
            sock.close()  # taken already: as the finding's machine had it
    try:
        yield
    finally:
        for sock in held:
            sock.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_readme_rehearsal_runs_as_written_with_8080_and_8765_taken(tmp_path: Path) -> None:
    # The block runs "from the repository, after make demo": the same layout, in a
    # scratch directory so that its rehearsal.db lands there.
    (tmp_path / "syncd").symlink_to(REPO / "syncd")
    activate = tmp_path / ".venv" / "bin" / "activate"
    activate.parent.mkdir(parents=True)
    activate.write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    with ports_taken(TAKEN):
        proc = subprocess.Popen(["bash", "-c", rehearsal()], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=240)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything the block left behind

    assert "[200]" in output, output[-3000:]
    assert "suppressed: newsletter (unsubscribe)" in output, output[-3000:]
    assert "Traceback" not in output
    assert not (tmp_path / "rehearsal.db").exists()
