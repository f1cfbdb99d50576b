"""`castor-client multicast`: join a session, write the table, receive every partition.

Per partition stream the source handed to the shared `restore_partition` is a command,
`udp-receiver`: its stdout (the stored, still compressed stream) is hashed in Python and fed
on to `decompress | partclone.<fs> -r`, so the SHA-256 of exactly what was sent is checked
against the manifest when the stream ends. Table, swap and the finishing steps are the unicast
deploy's own functions.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import threading
import uuid
from contextlib import ExitStack

from client.api import Api
from client.deploy import disk_facts, http_source, write_table
from client.devices import Disk, open_disk
from client.finish import finish_disk
from client.main import command
from client.pipeline import Pipeline
from client.progress import Progress
from client.restore import make_swap, restore_partition, verified
from client.run import ClientError, run

log = logging.getLogger("castor.client")
ROUTE_DEV_RE = re.compile(r"\bdev\s+(\S+)")
JOIN = "/api/v1/multicast/join"
CLIENTS = "/api/v1/multicast/clients"


def route_interface(host: str) -> str:
    """Return the network interface the kernel uses to reach host."""
    address = socket.gethostbyname(host)
    match = ROUTE_DEV_RE.search(run(["ip", "-o", "route", "get", address]))
    if match is None:
        raise ClientError(f"no route to {host}: pass --interface")
    return match.group(1)


def receiver_argv(stream: dict, interface: str, info: dict) -> list[str]:
    """Return the udp-receiver command line of one stream (its own port pair)."""
    return ["udp-receiver", "--portbase", str(stream["portbase"]), "--interface", interface,
            "--nokbd", "--start-timeout", str(info.get("start_timeout", 600)),
            # A receiver the sender dropped (too slow to answer) would otherwise wait forever.
            "--receive-timeout", str(info.get("receive_timeout", 120)),
            *info.get("receiver_args", [])]


def normalise_plans(plans: list[dict], schema: dict) -> list[dict]:
    """Give each planned partition its schema filesystem object (type, uuid, label).

    The planner names a partition's filesystem by its type only; the restore and finishing
    steps want the whole object (label and UUID for mkfs/mkswap, type for growing).
    """
    disks = {d["index"]: d for d in schema.get("disks", [])}
    for plan in plans:
        parts = {p["number"]: p for p in disks.get(plan["disk_index"], {}).get("partitions", [])}
        for part in plan.get("partitions") or []:
            fs = part.get("filesystem")
            if isinstance(fs, str):
                source = parts.get(part.get("source_partition") or -1) or {}
                part["filesystem"] = source.get("filesystem") or {"type": fs}
    return plans


def stream_target(stream: dict, plans: dict[int, dict]) -> dict | None:
    """Return the planned partition a stream restores into, or None if it is not deployed."""
    plan = plans.get(stream["disk"])
    for part in (plan or {}).get("partitions") or []:
        if part.get("role") == "extended":
            continue
        source = part.get("source_partition") or part["number"]
        if (stream.get("lv") and part.get("lv") == stream["lv"]) or (
                not stream.get("lv") and source == stream["partition"] and not part.get("lv")):
            return part
    return None


def discard_stream(stream: dict, interface: str, info: dict, progress: Progress) -> None:
    """Receive a stream this client does not deploy, so the sender is not kept waiting."""
    with Pipeline([receiver_argv(stream, interface, info)], cancel=progress.cancelled) as rx:
        for _ in verified(rx.chunks(), stream["sha256"], f"stream {stream['index']}",
                          progress.update, stream["size_bytes"]):
            pass


def receive_streams(opened: list[Disk], info: dict, interface: str, progress: Progress,
                    current: dict) -> None:
    """Receive every stream in the sender's order onto its planned partition."""
    plans = {p["disk_index"]: p for p in info["plans"]}
    for stream in sorted(info["streams"], key=lambda s: s["index"]):
        current["stream"] = stream["index"]
        part = stream_target(stream, plans)
        label = f"stream {stream['index']} (hd{stream['disk']} part{stream['partition']})"
        progress.start(f"stream-{stream['index']}", label, stream["size_bytes"])
        if part is None:
            log.info("%s is not deployed here: received and dropped", label)
            discard_stream(stream, interface, info, progress)
        else:
            fs = part.get("filesystem") or {}
            device = opened[stream["disk"]].partition_device(
                part["number"], part["start_sector"], part["size_sectors"])
            restore_partition([receiver_argv(stream, interface, info)], stream["compression"],
                              stream["filesystem"], device, stream["sha256"],
                              kind=stream["kind"], label=label,
                              expected_size=stream["size_bytes"], fs_label=fs.get("label", ""),
                              fs_uuid=fs.get("uuid", ""), on_stderr_line=progress.tool_line,
                              on_bytes=progress.update, cancel=progress.cancelled)
        if progress.cancelled.is_set():
            raise ClientError("the multicast session was cancelled")
        progress.finish()


def _reporter(api: Api, member_id: int, current: dict):
    """Progress reports to the session; a cancelled session answers cancel."""

    def report(body: dict) -> dict:
        answer = api.post(f"{CLIENTS}/{member_id}/progress", {
            "stream": current["stream"], "bytes": body.get("bytes_done") or 0,
            "total": body.get("bytes_total") or 0, "rate_bps": body.get("rate_bytes_s") or 0})
        return {"cancel": answer.get("state") in ("cancelled", "failed")}

    return report


def deploy_multicast(api: Api, session: str, disks: list[str], *, interface: str | None = None,
                     client_id: str | None = None, computer: str = "") -> dict:
    """Join a session and deploy every stream onto the given disks; return the join answer."""
    interface = interface or route_interface(api.host)
    with ExitStack() as stack:
        opened = [stack.enter_context(open_disk(path)) for path in disks]
        info = api.post(JOIN, {"session": session, "client_id": client_id or uuid.uuid4().hex,
                               "computer": computer, "disks": disk_facts(opened)})
        normalise_plans(info["plans"], info["schema"])
        member_id, current = info["client_id"], {"stream": 0}
        progress = Progress(_reporter(api, member_id, current), report_every=1.0)
        options = {**info.get("profile", {}),
                   **({"computer_name": computer} if computer else {})}
        source = http_source(api, info["session"]["image"])  # table and head: small files
        stop = threading.Event()
        threading.Thread(target=_poll_session, args=(progress, stop), daemon=True).start()
        try:
            envs = {}
            for plan in info["plans"]:
                disk = opened[plan["disk_index"]]
                envs[plan["disk_index"]] = env = {
                    "CASTOR_DISK": disk.path, "CASTOR_IMAGE": info["session"]["image"],
                    "CASTOR_COMPUTER_NAME": computer}
                write_table(disk, plan, info["manifest"], source, options, env)
            receive_streams(opened, info, interface, progress, current)
            for plan in info["plans"]:
                disk = opened[plan["disk_index"]]
                for part in plan.get("partitions") or []:
                    fs = part.get("filesystem") or {}
                    if fs.get("type") == "swap":
                        make_swap(disk.partition_device(part["number"], part["start_sector"],
                                                        part["size_sectors"]),
                                  fs.get("uuid", ""), fs.get("label", ""))
                finish_disk(disk, plan, info["schema"], options, api=api,
                            env=envs[plan["disk_index"]])
        except BaseException as exc:
            stop.set()
            try:
                api.post(f"{CLIENTS}/{member_id}/failed",
                         {"error": str(exc) or type(exc).__name__})
            except ClientError as report_error:
                log.warning("could not report the failure: %s", report_error)
            raise
        stop.set()
        api.post(f"{CLIENTS}/{member_id}/done", {})
    return info


def _poll_session(progress: Progress, stop: threading.Event) -> None:
    """Report every few seconds even when no byte flows, so a dead session stops us."""
    while not stop.wait(2.0):
        progress.report()
        if progress.cancelled.is_set():
            return


def _multicast_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", required=True, help="name of the session to join")
    parser.add_argument("--disk", action="append", required=True, dest="disks", metavar="DEV",
                        help="destination block device or disk-image file (repeatable)")
    parser.add_argument("--interface", help="network interface (default: the one to the server)")
    parser.add_argument("--client-id", help="stable id of this machine (default: random)")
    parser.add_argument("--computer-name", default="", help="computer name known to the server")


@command("multicast", _multicast_args)
def cmd_multicast(args: argparse.Namespace, api: Api) -> int:
    """Receive an image from a multicast session onto the disks."""
    deploy_multicast(api, args.session, args.disks, interface=args.interface,
                     client_id=args.client_id, computer=args.computer_name)
    print(f"received session {args.session} onto {', '.join(args.disks)}")
    return 0
