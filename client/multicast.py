"""`castor-client multicast`: join a session and run the deploy loop on its streams.

The deploy is the unicast one (`client.deploy.deploy_plans`: scripts, table, restore, GUIDs,
growing, computer name, file copies, NVRAM); only the byte source differs
(`client.multicast_source.MulticastSource`: udp-receiver, completed over HTTP when a stream
falls short). A machine fails only for what HTTP cannot fix.

Nothing is written before the deploy is known to fit: the server's planner refuses disks it
cannot plan for when the machine joins (too small, another sector size), and the client's
preflight (`client.preflight.check_deploy`, in the deploy loop) checks the real disks, the
tools, the file sizes and headers over HTTP before the first write. A refused machine says
why to the session (`.../failed`) and leaves it; the sender stops waiting for it.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import threading
import uuid
from contextlib import ExitStack

from client.api import Api, ApiError
from client.deploy import deploy_plans, disk_facts
from client.devices import open_disk
from client.main import command
from client.multicast_source import MulticastSource
from client.preflight import DeployRefused
from client.progress import Progress
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


def _reporter(source_box: list, current: dict):
    """Progress reports to the session; a cancelled session answers cancel."""

    def report(body: dict) -> dict:
        answer = source_box[0].report(current["stream"], {
            "bytes": body.get("bytes_done") or 0, "total": body.get("bytes_total") or 0,
            "rate_bps": body.get("rate_bytes_s") or 0})
        return {"cancel": answer.get("state") == "cancelled"}

    return report


def deploy_multicast(api: Api, session: str, disks: list[str], *, interface: str | None = None,
                     client_id: str | None = None, computer: str = "") -> dict:
    """Join a session and deploy its image onto the given disks; return the join answer."""
    interface = interface or route_interface(api.host)
    with ExitStack() as stack:
        opened = [stack.enter_context(open_disk(path)) for path in disks]
        try:
            info = api.post(JOIN, {"session": session,
                                   "client_id": client_id or uuid.uuid4().hex,
                                   "computer": computer, "disks": disk_facts(opened)})
        except ApiError as exc:
            if exc.status != 422:
                raise
            # The server refused this machine (a disk it cannot plan for, or not in the
            # session's group) and put the reason on the session: nothing to report back.
            raise DeployRefused(f"deploy refused, nothing was written: {exc}") from exc
        member_id, current, box = info["client_id"], {"stream": 0}, []
        progress = Progress(_reporter(box, current), report_every=1.0)
        source = MulticastSource(api, info, interface, member_id, progress.cancelled,
                                 on_stream=lambda index: current.update(stream=index))
        box.append(source)
        answer = {"image": {"name": info["session"]["image"]}, "plans": info["plans"],
                  "manifest": info["manifest"], "schema": info["schema"],
                  "profile": info.get("profile", {})}
        options = {"computer_name": computer} if computer else {}
        stop = threading.Event()
        threading.Thread(target=_poll_session, args=(progress, stop), daemon=True).start()
        try:
            deploy_plans(api, answer, opened, source, progress, options)
            if progress.cancelled.is_set():
                raise ClientError("the multicast session was cancelled")
        except BaseException as exc:
            stop.set()
            log.error("multicast deploy failed: %s", exc)
            try:
                api.post(f"{CLIENTS}/{member_id}/failed",
                         {"error": str(exc) or type(exc).__name__})
            except ClientError as report_error:
                log.warning("could not report the failure: %s", report_error)
            raise
        stop.set()
        multicast, http = source.totals()
        log.info("received %d bytes by multicast and %d by HTTP", multicast, http)
        api.post(f"{CLIENTS}/{member_id}/done", {"multicast_bytes": multicast,
                                                 "http_bytes": http})
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
