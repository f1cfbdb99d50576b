"""What each machine of a session received, stream by stream: multicast bytes, HTTP bytes, why.

A receiver that falls behind completes its stream over HTTP; these functions keep that
visible on the session (its log, its page and the summary in the image's history). Plain
functions over models; the caller commits.
"""

from __future__ import annotations

import json

from app.models import MulticastClient, MulticastSession

PROGRESS_KEYS = ("bytes", "total", "rate_bps")


class OutcomeError(ValueError):
    """A stream report that does not fit the session."""


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OutcomeError(f"{name} must be a whole number of bytes")
    return value


def _store(member: MulticastClient, values: dict) -> None:
    member.progress_json = json.dumps(values, sort_keys=True)


def record_progress(member: MulticastClient, stream: str, body: dict) -> None:
    """Store a client's byte counts on one stream, keeping the stream's recorded outcome."""
    values = member.progress
    entry = values.get(stream, {})
    entry.update({k: int(body.get(k, 0) or 0) for k in PROGRESS_KEYS})
    values[stream] = entry
    _store(member, values)


def record_stream_outcome(member: MulticastClient, index: int, body: dict) -> None:
    """Store how a client got one stream's bytes and log it on the session."""
    session = member.session
    if index < 0 or index >= len(session.streams):
        raise OutcomeError(f"session {session.name} has no stream {index}")
    multicast = _int(body.get("multicast_bytes", 0), "multicast_bytes")
    http = _int(body.get("http_bytes", 0), "http_bytes")
    size = session.streams[index]["size_bytes"]
    if multicast + http != size:
        raise OutcomeError(f"stream {index} holds {size} bytes, the report adds up to "
                           f"{multicast + http}")
    cause = str(body.get("cause") or "")[:500]
    text = str(body.get("text") or "")[:600] or f"stream {index}: {multicast} B multicast, " \
        f"{http} B HTTP"
    values = member.progress
    entry = values.get(str(index), {})
    entry.update(bytes=size, total=size, multicast_bytes=multicast, http_bytes=http,
                 cause=cause, text=text)
    values[str(index)] = entry
    _store(member, values)
    if http:
        session.append_log(f"{member.label}: {text}")


def machine_split(member: MulticastClient) -> dict:
    """Return one machine's bytes by multicast and by HTTP, and the streams that fell back."""
    multicast = http = 0
    fell_back = []
    for index, entry in sorted(member.progress.items(), key=lambda item: int(item[0])):
        multicast += int(entry.get("multicast_bytes", 0))
        http += int(entry.get("http_bytes", 0))
        if entry.get("http_bytes"):
            fell_back.append({"stream": int(index), "text": entry.get("text", "")})
    total = multicast + http
    return {"client_id": member.client_id, "machine": member.label, "state": member.state,
            "error": member.error, "multicast_bytes": multicast, "http_bytes": http,
            "multicast_percent": round(multicast * 100 / total, 1) if total else None,
            "fell_back": fell_back}


def session_summary(session: MulticastSession) -> dict:
    """Return the per-machine byte split and whether every machine had to fall back."""
    machines = [machine_split(member) for member in session.clients]
    reported = [m for m in machines if m["multicast_bytes"] + m["http_bytes"] > 0]
    all_fell_back = bool(reported) and all(m["http_bytes"] > 0 for m in reported)
    none_by_multicast = bool(reported) and all(m["multicast_bytes"] == 0 for m in reported)
    warning = ""
    if none_by_multicast:
        warning = ("no machine received anything by multicast: this network does not seem "
                   "to carry multicast (check IGMP snooping, VLANs and the interface)")
    elif all_fell_back:
        warning = ("every machine had to complete streams over HTTP: the network or the "
                   "receivers could not keep up with the multicast rate")
    return {"machines": machines, "all_fell_back": all_fell_back,
            "multicast_bytes": sum(m["multicast_bytes"] for m in machines),
            "http_bytes": sum(m["http_bytes"] for m in machines), "warning": warning}
