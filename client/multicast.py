"""`castor-client multicast`: join a session, write the table, receive every partition.

Per partition stream: `udp-receiver` writes the stored (compressed) stream to our stdin; we
hash it chunk by chunk and feed it on to `decompress | partclone.<fs> -r`, so the SHA-256 of
exactly what was sent is checked against the manifest when the stream ends.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

from client.api import Api, ApiError
from client.compress import decompress_stage
from client.devices import Disk, open_disk
from client.pipeline import Pipeline, run_pipeline
from client.progress import Progress
from client.run import ClientError, run

log = logging.getLogger("castor.client")
ROUTE_DEV_RE = re.compile(r"\bdev\s+(\S+)")


def route_interface(host: str) -> str:
    """Return the network interface the kernel uses to reach host."""
    address = socket.gethostbyname(host)
    match = ROUTE_DEV_RE.search(run(["ip", "-o", "route", "get", address]))
    if match is None:
        raise ClientError(f"no route to {host}: pass --interface")
    return match.group(1)


def receiver_argv(stream: dict, interface: str, info: dict) -> list[str]:
    """Return the udp-receiver command line of one stream."""
    return ["udp-receiver", "--portbase", str(stream["portbase"]), "--interface", interface,
            "--nokbd", "--start-timeout", str(info.get("start_timeout", 600)),
            *info.get("receiver_args", [])]


def restore_argv(stream: dict, device: str) -> list[str]:
    """Return the command that writes a decompressed stream onto a partition device."""
    if stream["kind"] == "dd":
        return ["partclone.dd", "-q", "-s", "-", "-o", device]
    if stream["kind"] != "partclone":
        raise ClientError(f"stream {stream['index']}: {stream['kind']} images cannot be "
                          "deployed over multicast")
    return [f"partclone.{stream['filesystem']}", "-r", "-q", "-s", "-", "-o", device]


class HashingReader:
    """Passes chunks through while counting them and computing their SHA-256."""

    def __init__(self, chunks: Iterator[bytes], progress: Progress) -> None:
        self.chunks = chunks
        self.progress = progress
        self.digest = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for data in self.chunks:
            self.digest.update(data)
            self.size += len(data)
            self.progress.update(self.size)
            yield data


def receive_stream(stream: dict, interface: str, info: dict, device: str,
                   progress: Progress) -> None:
    """Receive one stream onto a device; raise ClientError on a failed or corrupt stream."""
    stages = [s for s in (decompress_stage(stream["compression"]),
                          restore_argv(stream, device)) if s]
    cancel = progress.cancelled
    with Pipeline([receiver_argv(stream, interface, info)], cancel=cancel) as receiver:
        reader = HashingReader(receiver.chunks(), progress)
        run_pipeline(stages, source=iter(reader), on_stderr_line=progress.tool_line,
                     cancel=cancel)
    if cancel.is_set():
        raise ClientError("the session was cancelled")
    if reader.size != stream["size_bytes"]:
        raise ClientError(f"stream {stream['index']} (partition {stream['partition']}): "
                          f"{reader.size} bytes received, manifest says {stream['size_bytes']}")
    if reader.digest.hexdigest() != stream["sha256"]:
        raise ClientError(f"stream {stream['index']} (partition {stream['partition']}): "
                          "SHA-256 mismatch with the manifest; the partition is not usable")


def write_table(disk: Disk, plan: dict) -> None:
    """Wipe the disk's signatures and write the planned partition table."""
    disk.release_partitions()
    run(["wipefs", "-a", "-q", disk.path], check=False)
    run(["sfdisk", "-q", "--wipe", "always", "--no-reread", "--no-tell-kernel", disk.path],
        input=plan["sfdisk_script"])
    disk.reread_table()


def finish_partitions(disk: Disk, plan: dict) -> None:
    """Recreate swap partitions (never imaged) with their original UUID."""
    for part in plan["partitions"]:
        fs = part.get("filesystem") or {}
        if fs.get("type") == "swap":
            dev = disk.partition_device(part["number"], part["start_sector"],
                                        part["size_sectors"])
            argv = ["mkswap"]
            if fs.get("uuid"):
                argv += ["-U", fs["uuid"]]
            if fs.get("label"):
                argv += ["-L", fs["label"]]
            run([*argv, dev])


def _reporter(api: Api, member_id: int, state: dict):
    def report(body: dict) -> dict:
        answer = api.post(f"/api/v1/multicast/clients/{member_id}/progress", {
            "stream": state["stream"], "bytes": body.get("bytes_done") or 0,
            "total": body.get("bytes_total") or 0, "rate_bps": body.get("rate_bytes_s") or 0})
        return {"cancel": answer.get("state") in ("cancelled", "failed")}
    return report


def deploy_multicast(api: Api, session: str, disks: list[str], *, interface: str | None = None,
                     client_id: str | None = None, computer: str = "") -> dict:
    """Join a session and deploy every stream onto the given disks; return the join answer."""
    interface = interface or route_interface(api.host)
    with ExitStack() as stack:
        opened = [stack.enter_context(open_disk(path)) for path in disks]
        info = api.post("/api/v1/multicast/join", {
            "session": session, "client_id": client_id or uuid.uuid4().hex,
            "computer": computer,
            "disks": [{"size_bytes": d.size_bytes, "logical_sector_size": d.logical_sector_size,
                       "physical_sector_size": d.physical_sector_size} for d in opened]})
        member_id = info["client_id"]
        state = {"stream": 0}
        progress = Progress(_reporter(api, member_id, state), report_every=1.0)
        try:
            plans = {p["disk_index"]: p for p in info["plans"]}
            for index, plan in plans.items():
                write_table(opened[index], plan)
            for stream in sorted(info["streams"], key=lambda s: s["index"]):
                plan = plans.get(stream["disk"])
                part = next((p for p in (plan or {}).get("partitions", [])
                             if p.get("source_partition") == stream["partition"]), None)
                if plan is None or part is None:
                    raise ClientError(f"stream {stream['index']}: partition "
                                      f"{stream['partition']} has no place in the plan")
                disk = opened[stream["disk"]]
                device = disk.partition_device(part["number"], part["start_sector"],
                                               part["size_sectors"])
                state["stream"] = stream["index"]
                progress.start(f"stream-{stream['index']}",
                               f"partition {part['number']}", stream["size_bytes"])
                receive_stream(stream, interface, info, device, progress)
                progress.finish()
            for index, plan in plans.items():
                finish_partitions(opened[index], plan)
                finish_disk_steps(opened[index], plan, info)
        except BaseException as exc:
            message = str(exc) or type(exc).__name__
            try:
                api.post(f"/api/v1/multicast/clients/{member_id}/failed", {"error": message})
            except ClientError as report_error:
                log.warning("could not report the failure: %s", report_error)
            raise
        api.post(f"/api/v1/multicast/clients/{member_id}/done", {})
    return info


def finish_disk_steps(disk: Disk, plan: dict, info: dict) -> None:
    """Run the unicast deploy's post-restore steps (grow, GUIDs, name, modules) if present."""
    try:
        from client.deploy import finish_disk
    except ImportError:
        return
    finish_disk(disk, plan, info.get("options", {}))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the `multicast` subcommand to castor-client's argument parser."""
    parser = subparsers.add_parser("multicast", help="receive an image from a multicast session")
    parser.add_argument("--session", required=True, help="name of the session to join")
    parser.add_argument("--disk", action="append", required=True,
                        help="destination block device or disk-image file (repeatable)")
    parser.add_argument("--interface", help="network interface (default: the one to the server)")
    parser.add_argument("--client-id", help="stable id of this machine (default: random)")
    parser.add_argument("--computer", default="", help="computer name known to the server")
    parser.set_defaults(command_func=command)


def command(args: argparse.Namespace, api: Api | None = None) -> int:
    """Run `castor-client multicast` from parsed arguments."""
    api = api or Api(args.server, args.token)
    try:
        deploy_multicast(api, args.session, args.disk, interface=args.interface,
                         client_id=args.client_id, computer=args.computer)
    except ApiError as exc:
        raise ClientError(str(exc)) from exc
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: `python -m client.multicast --server URL --token T multicast`."""
    parser = argparse.ArgumentParser(prog="castor-client")
    parser.add_argument("--server", required=True)
    parser.add_argument("--token", required=True)
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return command(args)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
