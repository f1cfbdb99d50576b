"""Validation of the extra udp-sender / udp-receiver arguments a profile may carry.

The arguments end up on the command line of the multicast sender and of every receiver, so
only udpcast's own options are accepted, each value is checked against what that option
takes, and anything that a shell could interpret is refused outright.
"""

from __future__ import annotations

import re
import shlex
from typing import Literal

Role = Literal["sender", "receiver"]

# Characters that would let an argument escape into a shell if one were ever involved.
SHELL_METACHARACTERS = set(";&|$`<>(){}\\\n\r*?!~#")

# Castor chooses these per session (file, port pair, interface); a profile must not.
SET_BY_CASTOR = ("--file", "--portbase", "--interface")

VALUE_PATTERNS = {
    "int": re.compile(r"^\d{1,9}$"),
    "addr": re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$"),
    "rate": re.compile(r"^\d{1,9}(\.\d{1,3})?[kKmMgG]?$"),
    "fec": re.compile(r"^\d{1,3}x\d{1,3}(/\d{1,5})?$"),
    "path": re.compile(r"^[A-Za-z0-9._/-]{1,200}$"),
}

VALUE_HINTS = {
    "int": "a whole number",
    "addr": "an IPv4 address",
    "rate": "a bit rate such as 50m",
    "fec": "a FEC spec such as 8x8/128",
    "path": "a file path of letters, digits, '.', '_', '-' and '/'",
}

# Option name -> kind of value it takes (None for a flag without a value).
SENDER_OPTIONS: dict[str, str | None] = {
    "--full-duplex": None, "--half-duplex": None, "--broadcast": None,
    "--pointopoint": None, "--async": None, "--nokbd": None, "--no-progress": None,
    "--daemon-mode": None,
    "--mcast-data-address": "addr", "--mcast-rdv-address": "addr",
    "--max-bitrate": "rate", "--fec": "fec", "--ttl": "int",
    "--rexmit-hello-interval": "int", "--autostart": "int", "--min-receivers": "int",
    "--max-wait": "int", "--min-wait": "int", "--start-timeout": "int",
    "--retries-until-drop": "int", "--blocksize": "int", "--slice-size": "int",
    "--min-slice-size": "int", "--max-slice-size": "int", "--default-slice-size": "int",
    "--log": "path", "--bw-period": "int",
    "--file": "path", "--portbase": "int", "--interface": "path",
}

RECEIVER_OPTIONS: dict[str, str | None] = {
    "--nosync": None, "--sync": None, "--nokbd": None, "--no-progress": None,
    "--mcast-rdv-address": "addr", "--ttl": "int", "--start-timeout": "int",
    "--receive-timeout": "int", "--exitWait": "int", "--log": "path",
    "--file": "path", "--portbase": "int", "--interface": "path",
}


def _check_value(option: str, kind: str, value: str) -> None:
    """Raise ValueError when a value does not fit what its option takes."""
    match = VALUE_PATTERNS[kind].match(value)
    if match is None or (kind == "addr" and any(int(part) > 255 for part in match.groups())):
        raise ValueError(f"{option} takes {VALUE_HINTS[kind]}, not {value!r}")
    if kind == "path" and ".." in value.split("/"):
        raise ValueError(f"{option}: '..' is not allowed in a path")


def validate_udpcast_args(text: str, role: Role) -> list[str]:
    """Return the argv of extra udpcast arguments, raising ValueError(message) if unsafe."""
    if role not in ("sender", "receiver"):
        raise ValueError(f"unknown udpcast role {role!r}")
    program = "udp-sender" if role == "sender" else "udp-receiver"
    options = SENDER_OPTIONS if role == "sender" else RECEIVER_OPTIONS
    text = (text or "").strip()
    if not text:
        return []
    bad = sorted(SHELL_METACHARACTERS.intersection(text))
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ValueError(f"shell metacharacters are not allowed: {shown}")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"the arguments do not parse ({exc}); check the quotes") from exc

    argv: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        name, has_inline, inline_value = word.partition("=")
        if not name.startswith("--"):
            raise ValueError(f"{word!r} is not a {program} option (options start with --)")
        if name in SET_BY_CASTOR:
            raise ValueError(f"{name} is set by Castor for each session; remove it")
        if name not in options:
            raise ValueError(f"{name} is not a known {program} option")
        kind = options[name]
        if kind is None:
            if has_inline:
                raise ValueError(f"{name} takes no value")
            argv.append(name)
            index += 1
            continue
        if has_inline:
            value = inline_value
            index += 1
        else:
            if index + 1 >= len(words):
                raise ValueError(f"{name} needs a value ({VALUE_HINTS[kind]})")
            value = words[index + 1]
            index += 2
        _check_value(name, kind, value)
        argv.extend([name, value])
    return argv
