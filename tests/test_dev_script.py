"""``scripts/dev.py`` hands SIGTERM and SIGINT to the server it started, once each, and
exits with the server's status."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

SERVER = """
import signal, sys, time
from pathlib import Path
heard = []
def note(signum, frame):
    heard.append(signum)
    Path(sys.argv[1]).write_text(" ".join(map(str, heard)))
    if len(heard) == 1:
        raise SystemExit(7)
signal.signal(signal.SIGTERM, note)
signal.signal(signal.SIGINT, note)
Path(sys.argv[1] + ".ready").touch()
while True:
    time.sleep(0.05)
"""


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_signal_reaches_the_server_once(tmp_path: Path, sent: signal.Signals) -> None:
    heard = tmp_path / "heard"
    (tmp_path / "server.py").write_text(SERVER)
    wrapper = (
        f"import sys; sys.path.insert(0, {str(SCRIPTS)!r}); import dev; "
        f"sys.exit(dev.serve([sys.executable, {str(tmp_path / 'server.py')!r}, {str(heard)!r}]))"
    )
    dev = subprocess.Popen([sys.executable, "-c", wrapper])
    try:
        deadline = time.monotonic() + 20
        while not Path(f"{heard}.ready").exists():
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        dev.send_signal(sent)
        assert dev.wait(20) == 7
    finally:
        if dev.poll() is None:
            dev.kill()
    assert heard.read_text() == str(int(sent))
