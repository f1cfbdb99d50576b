"""Plain checks and normal forms for computer fields (no Flask, no database)."""

from __future__ import annotations

import re

_HEX_MAC = re.compile(r"^[0-9a-f]{12}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def normalize_mac(mac: str | None) -> str:
    """Return a MAC address as `aa:bb:cc:dd:ee:ff`, or raise ValueError if it is not one."""
    digits = re.sub(r"[\s:.\-]", "", (mac or "").lower())
    if not _HEX_MAC.match(digits):
        raise ValueError(f"not a MAC address: {mac!r}")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


# What normalize_mac takes, for API schemas: empty, or 12 hex digits among separators.
MAC_PATTERN = r"^(?:[\s:.-]*(?:[0-9A-Fa-f][\s:.-]*){12})?$"


def mac_problem(mac: str | None) -> str | None:
    """Say what is wrong with an optional MAC address, or None when it is usable."""
    if not mac:
        return None
    try:
        normalize_mac(mac)
    except ValueError:
        return "A MAC address is six hex pairs, like aa:bb:cc:dd:ee:ff."
    return None


def computer_name_problem(name: str | None) -> str | None:
    """Say what is wrong with a computer name, or None when it is valid."""
    if not name:
        return "A name is required."
    if not _NAME.match(name):
        return "Use letters, digits, dot, dash and underscore (up to 63), starting alphanumeric."
    return None


def name_for_mac(mac: str) -> str:
    """Return the name given to a computer registered automatically from its MAC address."""
    return "pc-" + normalize_mac(mac).replace(":", "")


def model_matches(model: str, pattern: str, criteria: str) -> bool:
    """Tell whether a hardware model string matches a profile's model match rule."""
    model, pattern = (model or "").strip().casefold(), (pattern or "").strip().casefold()
    if not model or not pattern:
        return False
    if criteria == "equals":
        return model == pattern
    if criteria == "starts_with":
        return model.startswith(pattern)
    if criteria == "ends_with":
        return model.endswith(pattern)
    if criteria == "contains":
        return pattern in model
    return False
