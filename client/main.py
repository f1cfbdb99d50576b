"""castor-client: upload and deploy disks against a Castor server.

One error boundary: expected failures print a message and exit 1, Ctrl-C exits 130,
anything else prints a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from client.api import Api
from client.run import ClientError, redact

log = logging.getLogger("castor.client")

# Subcommands register here: name -> (configure parser, run(args, api) -> exit code).
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace, Api], int]]] = {}


def command(name: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand's parser setup and its handler."""

    def decorate(handler: Callable[[argparse.Namespace, Api], int]):
        COMMANDS[name] = (configure, handler)
        return handler

    return decorate


def _image_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="image name")
    parser.add_argument("--profile", help="profile name or id (default: the first)")
    parser.add_argument("--disk", action="append", required=True, dest="disks",
                        metavar="DEV", help="block device or raw disk-image file (repeatable)")


def _upload_args(parser: argparse.ArgumentParser) -> None:
    _image_args(parser)
    parser.add_argument("--shrink-threshold", type=int, metavar="BYTES",
                        help="shrink ext/NTFS filesystems larger than this (default 5 GiB)")
    parser.add_argument("--shrink-slack", type=int, metavar="BYTES",
                        help="free space left in a shrunk filesystem (default: per filesystem)")
    parser.add_argument("--schema-only", action="store_true", help="only send the schema")


def _deploy_args(parser: argparse.ArgumentParser) -> None:
    _image_args(parser)
    parser.add_argument("--computer-name", default="", help="name given to the deployed system")


@command("upload", _upload_args)
def cmd_upload(args: argparse.Namespace, api: Api) -> int:
    """Capture the disks and upload them as an image."""
    from client.upload import upload_image

    options: dict = {}
    if args.shrink_threshold is not None:
        options["shrink_threshold_bytes"] = args.shrink_threshold
    if args.shrink_slack is not None:
        options["shrink_slack_bytes"] = args.shrink_slack
    if args.schema_only:
        options["upload_schema_only"] = True
    answer = upload_image(api, args.image, args.profile, args.disks, options)
    files = answer.get("manifest", {}).get("files", [])
    print(f"uploaded image {args.image}: {len(files)} files")
    return 0


@command("deploy", _deploy_args)
def cmd_deploy(args: argparse.Namespace, api: Api) -> int:
    """Deploy an image onto the disks."""
    from client.deploy import deploy_image

    options = {"computer_name": args.computer_name} if args.computer_name else {}
    deploy_image(api, args.image, args.profile, args.disks, options)
    print(f"deployed image {args.image} to {', '.join(args.disks)}")
    return 0


@command("images", lambda parser: None)
def cmd_images(args: argparse.Namespace, api: Api) -> int:
    """List the images available on demand."""
    for image in api.get("/images?on_demand=1")["images"]:
        print(f"{image['name']}\t{image['type']}\t{image['description']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="castor-client", description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("CASTOR_SERVER"),
                        help="server URL (or CASTOR_SERVER)")
    parser.add_argument("--token", default=os.environ.get("CASTOR_TOKEN"),
                        help="API or task token (or CASTOR_TOKEN)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, handler) in COMMANDS.items():
        configure(sub.add_parser(name, help=(handler.__doc__ or "").strip()))
    return parser


def _load_plugins() -> None:
    """Import optional subcommand modules (task mode, multicast) when installed."""
    for dotted in ("client.task", "client.multicast"):
        try:
            __import__(dotted)
        except ImportError as exc:
            if exc.name != dotted:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the subcommand, turn failures into exit codes."""
    _load_plugins()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        # A task can start from its one-time boot ticket instead of a token.
        credential = (args.token or getattr(args, "ticket", None)
                      or getattr(args, "model_match", False))  # model match: none needed
        if not args.server or not credential:
            raise ClientError("--server and --token (or CASTOR_SERVER/CASTOR_TOKEN) are needed")
        api = Api(args.server, args.token)
        return COMMANDS[args.command][1](args, api)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ClientError as exc:
        print(f"castor-client: error: {redact(str(exc))}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - the one place unexpected errors are reported
        traceback.print_exc()
        return 2


def dump_json(data: object) -> str:
    """Pretty JSON for terminal output."""
    return json.dumps(data, indent=2, sort_keys=True)


if __name__ == "__main__":
    # Run through the package module so subcommand plugins register on the same registry.
    from client.main import main as package_main

    sys.exit(package_main())
