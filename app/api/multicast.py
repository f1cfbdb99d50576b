"""REST API: multicast sessions (create, list, get, cancel) and the receiving client's calls."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from app.api import api_error, token_required
from app.api.body import DISKS, Field, Text, body_schema, check_fields, json_object
from app.api.errors import MAX_ID
from app.auth import current_username
from app.errors import BadRequest
from app.extensions import db
from app.models import (
    ComputerGroup,
    ComServer,
    Image,
    MulticastClient,
    MulticastSession,
)
from app.models.base import utcnow
from app.multicast.outcomes import (
    OutcomeError,
    record_progress,
    record_stream_outcome,
    session_summary,
)
from app.multicast.plans import PlanError, plan_for, profile_options, stored_schema
from app.multicast.sessions import (
    LateJoinError,
    SessionError,
    fail_member,
    join_session,
    receive_timeout,
    setting,
)
from app.multicast.supervisor import cancel_session, start_session
from app.storage import image_dir, read_manifest

bp = Blueprint("api_multicast", __name__, url_prefix="/api/v1")

STREAM_FIELDS = ("index", "disk", "partition", "lv", "filesystem", "kind", "compression",
                 "size_bytes", "sha256", "portbase")


def _find(model, value, field: str = "name"):
    """Return a row by id (int) or by a name field, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdigit():
        return db.session.get(model, int(value))
    return db.session.scalar(db.select(model).filter_by(**{field: value}))


NAME_OR_ID = Field((str, int), max_length=128, minimum=1, maximum=MAX_ID, nullable=True,
                   description="a name, or an id")
SECONDS = Field(int, minimum=0, maximum=10 ** 7)
CREATE_FIELDS = {
    "name": Text(64, min_length=1), "image": NAME_OR_ID, "profile": NAME_OR_ID,
    "group": NAME_OR_ID,
    "com_server": NAME_OR_ID, "expected_clients": Field(int, minimum=1, maximum=10000,
                                                       nullable=True),
    "max_wait_seconds": SECONDS, "partition_timeout_seconds": SECONDS,
    "retries_until_drop": Field(int, minimum=0, maximum=10000)}
JOIN_FIELDS = {"session": Text(64), "client_id": Text(128), "computer": Text(128),
               "disks": DISKS, "efi": Field(bool, nullable=True)}
PROGRESS_FIELDS = {"stream": Field(int, minimum=0, maximum=10000),
                   **{k: Field(float, minimum=0, maximum=MAX_ID)
                      for k in ("bytes", "total", "rate_bps")}}
REPORT_FIELDS = {
    "error": Text(),
    "multicast_bytes": Field(int, minimum=0, maximum=MAX_ID,
                             description="bytes this client took from the streams"),
    "http_bytes": Field(int, minimum=0, maximum=MAX_ID,
                        description="bytes this client completed over HTTP"),
}


@bp.get("/multicast/sessions")
@token_required
def list_sessions():
    """List multicast sessions, newest first (`?live=1` for running ones only)."""
    query = db.select(MulticastSession).order_by(MulticastSession.id.desc())
    if request.args.get("live") == "1":
        query = query.where(MulticastSession.state.in_(("waiting", "sending")))
    return jsonify({"sessions": [s.to_dict() for s in db.session.scalars(query)]})


@bp.post("/multicast/sessions")
@token_required
def create():
    """Create a session for an image profile and start its supervisor."""
    body = check_fields(json_object(), CREATE_FIELDS, required=("image",))
    image = _find(Image, body.get("image"))
    if image is None:
        return api_error(404, f"no image {body.get('image')!r}")
    profile = None
    if body.get("profile"):
        profile = next((p for p in image.profiles if p.name == body["profile"]
                        or str(p.id) == str(body["profile"])), None)
        if profile is None:
            return api_error(404, f"image {image.name} has no profile {body['profile']!r}")
    group = _find(ComputerGroup, body.get("group"))
    if body.get("group") and group is None:
        return api_error(404, f"no computer group {body['group']!r}")
    server = _find(ComServer, body.get("com_server"), "display_name")
    if body.get("com_server") and server is None:
        return api_error(404, f"no com server {body['com_server']!r}")
    try:
        session = start_session(
            name=body.get("name", ""), image=image, profile=profile,
            expected_clients=body.get("expected_clients"), server=server, group=group,
            max_wait_seconds=body.get("max_wait_seconds", 120),
            partition_timeout_seconds=body.get("partition_timeout_seconds", 3600),
            retries_until_drop=body.get("retries_until_drop", 30),
            username=current_username())
    except SessionError as exc:
        # The fields were valid; the image, group or server refuse a session now.
        raise BadRequest(str(exc), status=422) from None
    return jsonify(session.to_dict()), 201


def _session_or_error(session_id: int):
    session = db.session.get(MulticastSession, session_id)
    return session, (None if session else api_error(404, f"no multicast session {session_id}"))


@bp.get("/multicast/sessions/<int:session_id>")
@token_required
def get(session_id: int):
    """Return one session with its clients and streams."""
    session, error = _session_or_error(session_id)
    return error or jsonify({**session.to_dict(), "summary": session_summary(session)})


@bp.post("/multicast/sessions/<int:session_id>/cancel")
@token_required
def cancel(session_id: int):
    """Cancel a live session and kill every sender it runs."""
    session, error = _session_or_error(session_id)
    if error:
        return error
    if not session.live:
        return api_error(409, f"session {session.name} is already {session.state}")
    cancel_session(session)
    return jsonify(session.to_dict())


@bp.post("/multicast/join")
@token_required
def join():
    """Join a waiting session by name; answer the streams, receiver args and disk plans."""
    body = check_fields(json_object(), JOIN_FIELDS, required=("session",))
    session = db.session.scalar(db.select(MulticastSession).filter_by(name=body["session"]))
    if session is None:
        return api_error(404, f"no multicast session named {body['session']!r}")
    disks = body.get("disks") or []
    try:
        member = join_session(session, str(body.get("client_id", ""))[:128],
                              request.remote_addr or "", str(body.get("computer", "")))
    except LateJoinError as exc:
        db.session.rollback()
        return api_error(409, str(exc), state=session.state)
    except SessionError as exc:
        db.session.rollback()
        return api_error(422, str(exc))
    try:
        plans = plan_for(session.image, session.profile, disks, body.get("efi"))
    except PlanError as exc:
        # One of the expected machines cannot take this image (too small a disk, another
        # sector size): it is recorded as failed, so the sender does not wait for it and
        # the session's page and log say why.
        fail_member(member, f"refused at join, nothing was written: {exc}")
        db.session.commit()
        current_app.logger.warning("multicast session %s: %s refused: %s", session.name,
                                   member.label, exc)
        return api_error(422, str(exc))
    db.session.commit()
    receiver_args: list[str] = []
    if session.profile is not None and session.profile.multicast_receiver_args:
        from app.profiles.multicast_args import validate_udpcast_args

        receiver_args = validate_udpcast_args(session.profile.multicast_receiver_args,
                                              "receiver")
    return jsonify({
        "client_id": member.id,
        "session": {"id": session.id, "name": session.name, "state": session.state,
                    "image": session.image.name},
        "streams": [{k: s.get(k) for k in STREAM_FIELDS} for s in session.streams],
        "receiver_args": receiver_args,
        # The receiver gives up on a stream whose sender never shows (cancelled session).
        "start_timeout": session.max_wait_seconds
        + int(setting("MULTICAST_STREAM_WAIT")) * 4 + 60,
        # A later stream starts within the sender's short wait, or without this machine.
        "next_stream_timeout": int(setting("MULTICAST_STREAM_WAIT")) * 2 + 10,
        "receive_timeout": receive_timeout(),
        "plans": plans,
        "profile": profile_options(session.profile),
        "schema": stored_schema(session.image),
        "manifest": read_manifest(image_dir(current_app.config["STORAGE_PATH"],
                                            session.image.name)),
    })


def _member_or_error(member_id: int):
    member = db.session.get(MulticastClient, member_id)
    return member, (None if member else api_error(404, f"no multicast client {member_id}"))


@bp.post("/multicast/clients/<int:member_id>/progress")
@token_required
def progress(member_id: int):
    """Record a client's progress on one stream; answer the session and stream states."""
    member, error = _member_or_error(member_id)
    if error:
        return error
    body = check_fields(json_object(optional=True), PROGRESS_FIELDS)
    record_progress(member, str(body.get("stream", 0)), body)
    if member.state in ("joined", "receiving"):
        member.state = "receiving"
    db.session.commit()
    session = member.session
    return jsonify({"state": session.state, "client_state": member.state,
                    "current_stream": session.current_stream,
                    "streams": [s.get("state", "pending") for s in session.streams]})


@bp.post("/multicast/clients/<int:member_id>/streams/<int:index>")
@token_required
def stream_outcome(member_id: int, index: int):
    """Record how a client got one stream's bytes: by multicast, by HTTP, and why."""
    member, error = _member_or_error(member_id)
    if error:
        return error
    body = json_object(optional=True)
    try:
        record_stream_outcome(member, index, body)
    except OutcomeError as exc:
        db.session.rollback()
        return api_error(422, str(exc))
    db.session.commit()
    return jsonify(member.to_dict())


@bp.post("/multicast/clients/<int:member_id>/<any(done, failed):outcome>")
@token_required
def report(member_id: int, outcome: str):
    """Record that a client finished its deploy, or failed (with `error`)."""
    member, error = _member_or_error(member_id)
    if error:
        return error
    body = check_fields(json_object(optional=True), REPORT_FIELDS)
    if outcome == "failed":
        fail_member(member, str(body.get("error", "")))
        db.session.commit()
        current_app.logger.warning("multicast session %s: %s failed: %s",
                                   member.session.name, member.label, member.error)
        return jsonify(member.to_dict())
    member.state, member.error, member.finished_at = "done", "", utcnow()
    if "multicast_bytes" in body or "http_bytes" in body:
        member.session.append_log(
            f"{member.label}: done, {body.get('multicast_bytes', 0)} bytes by multicast, "
            f"{body.get('http_bytes', 0)} by HTTP")
    db.session.commit()
    current_app.logger.info("multicast client %s done", member.id)
    return jsonify(member.to_dict())


_ERR = {"description": "refused; the body is {\"error\": message}", "content": {
    "application/json": {"schema": {"type": "object", "properties": {
        "error": {"type": "string"}}}}}}
OPENAPI_SCHEMAS = {
    "MulticastSession": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "image": {"type": "string"},
        "profile": {"type": "string"}, "expected_clients": {"type": "integer"},
        "joined_clients": {"type": "integer"},
        "state": {"enum": ["waiting", "sending", "finished", "failed", "cancelled"]},
        "streams": {"type": "array", "items": {"type": "object"}},
        "clients": {"type": "array", "items": {"type": "object"}}}},
}
OPENAPI_PATHS = {
    "/multicast/sessions": {
        "get": {"summary": "List multicast sessions", "parameters": [
            {"name": "live", "in": "query", "schema": {"type": "string"},
             "description": "1: running sessions only; anything else: all"}],
            "responses": {"200": {"description": "the sessions"}}},
        "post": {"summary": "Create a multicast session and start sending",
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": body_schema(CREATE_FIELDS, ("image",))}}},
                 "responses": {"201": {"description": "the session", "content": {
                     "application/json": {"schema": {
                         "$ref": "#/components/schemas/MulticastSession"}}}},
                     "400": _ERR, "404": _ERR}},
    },
    "/multicast/sessions/{id}": {"get": {"summary": "One multicast session", "responses": {
        "200": {"description": "the session"}, "404": _ERR}}},
    "/multicast/sessions/{id}/cancel": {"post": {
        "summary": "Cancel a session and kill its senders",
        "responses": {"200": {"description": "the session"}, "409": _ERR}}},
    "/multicast/join": {"post": {
        "summary": "Join a waiting session by name (late joiners get 409)",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": body_schema(JOIN_FIELDS, ("session",))}}},
        "responses": {"200": {"description": "client id, streams, receiver args, plans"},
                      "404": _ERR, "409": _ERR, "422": _ERR}}},
    "/multicast/clients/{id}/progress": {"post": {
        "summary": "Report bytes received on a stream; answers the session state",
        "responses": {"200": {"description": "session state"}}}},
    "/multicast/clients/{id}/streams/{index}": {"post": {
        "summary": "Report how one stream arrived (multicast bytes, HTTP bytes, cause)",
        "responses": {"200": {"description": "the client"}, "422": _ERR}}},
    "/multicast/clients/{id}/done": {"post": {"summary": "Report a finished deploy",
                                              "responses": {"200": {"description": "ok"}}}},
    "/multicast/clients/{id}/failed": {"post": {"summary": "Report a failed deploy",
                                                "responses": {"200": {"description": "ok"}}}},
}
