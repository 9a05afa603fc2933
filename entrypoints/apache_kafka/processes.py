"""Child processes (the JVMs, mvn): sessions of their own, killed as a group, output tails.

The JVMs run in sessions of their own, are killed by an atexit hook (cluster.py), and (with
util-linux's setpriv) die with this process even on SIGKILL, so a failed or interrupted
test run leaves no orphan JVM behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from contextlib import suppress
from pathlib import Path

_TAIL_BYTES = 8192
_TAIL_LINES = 15
_STACK_FRAME = re.compile(r"\s+(at |\.\.\. \d+ more)")


def popen(command: list[str], *, output_file: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own, its stdout and stderr appended to a file."""
    # A session of its own: a terminal's Ctrl-C reaches only us, and close() kills the
    # whole group. setpriv's parent-death signal covers the case where we are SIGKILLed;
    # only from the main thread, because it fires when the *thread* that forked exits.
    prefix: list[str] = []
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        prefix = [setpriv, "--pdeathsig", "KILL", "--"]
    with open(output_file, "ab") as output:
        return subprocess.Popen(
            [*prefix, *command],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )


def signal_group(process: subprocess.Popen[bytes] | None, signum: signal.Signals) -> None:
    """Send `signum` to the process's group, if the process is still running."""
    if process is not None and process.poll() is None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's group (it leads its own session) and reap it."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def tail_text(data: bytes) -> str:
    """The last lines of JVM or mvn output, Java stack frames left out.

    A fatal error ends in a stack trace whose frames would push the message (the part that
    says what is wrong) out of any short tail.
    """
    lines = data.decode(errors="replace").strip().splitlines()
    kept = [line for line in lines if not _STACK_FRAME.match(line)]
    return "\n".join(kept[-_TAIL_LINES:]) or "(no output)"


def file_tail(path: Path) -> str:
    """The last lines of an output file (see tail_text), for error messages."""
    try:
        with open(path, "rb") as output:
            output.seek(0, os.SEEK_END)
            output.seek(max(0, output.tell() - _TAIL_BYTES))
            return tail_text(output.read())
    except OSError:
        return "(no output)"
