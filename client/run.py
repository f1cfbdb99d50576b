"""Run external tools: argv lists only, never a shell, errors that say what failed."""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Sequence

log = logging.getLogger("castor.client")

SECRET_PATTERNS = (
    re.compile(r"(?i)(token|secret|password)=\S+"),
    re.compile(r"(?i)(bearer\s+)\S+"),
)


class ClientError(Exception):
    """An expected failure: main prints the message and exits 1."""


class CommandError(ClientError):
    """A tool exited non-zero (or could not start)."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = tail(stderr)
        status = "could not start" if returncode is None else f"exited {returncode}"
        message = f"{redact(' '.join(self.argv))} {status}"
        if self.stderr_tail:
            message += f": {self.stderr_tail}"
        super().__init__(message)


def redact(text: str) -> str:
    """Hide tokens, secrets and passwords in text written to logs."""
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + ("=" if "=" in m.group(0) else "") + "***",
                           text)
    return text


def tail(text: str | bytes, lines: int = 8) -> str:
    """Return the last lines of a tool's stderr, trimmed."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def run(argv: Sequence[str], *, input: bytes | str | None = None, timeout: float | None = None,
        check: bool = True, env: dict | None = None, cwd: str | None = None) -> str:
    """Run a tool, return its stdout as text; raise CommandError when it fails."""
    argv = [str(a) for a in argv]
    log.debug("run: %s", redact(" ".join(argv)))
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(argv, input=data, capture_output=True, timeout=timeout, env=env,
                              cwd=cwd, check=False)
    except FileNotFoundError as exc:
        raise CommandError(argv, None, f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, None, f"timed out after {timeout} s") from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout.decode(errors="replace")


def run_ok(argv: Sequence[str], **kwargs) -> bool:
    """Run a tool and tell whether it exited 0 (for probes whose failure is an answer)."""
    try:
        run(argv, **kwargs)
    except CommandError:
        return False
    return True
