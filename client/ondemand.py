"""On-demand imaging from the console: a whiptail menu to upload or deploy an image.

The machine booted without a task, so the person at it signs in (the on-demand login:
`POST /api/v1/client/login` → a short-lived token with that user's role), picks deploy or
upload, the image (deploy lists only images that hold an upload; upload offers "new image"),
the profile, and the client runs it on the disks automatic selection finds.
`python3 -m client.ondemand --server URL`.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Callable, Sequence

from client import autodisk
from client.api import Api, ApiError
from client.run import ClientError

log = logging.getLogger("castor.client")

NEW_IMAGE = "+new"
LOGIN = "/api/v1/client/login"


class Whiptail:
    """Dialogs drawn by Debian's whiptail on the console; every answer is a string or None."""

    def __init__(self, title: str = "Castor on demand", runner: Callable = subprocess.run):
        self.title = title
        self.runner = runner

    def _ask(self, args: list[str]) -> str | None:
        """Run one dialog; whiptail writes the answer to stderr, Cancel/Esc exits non-zero."""
        proc = self.runner(["whiptail", "--title", self.title, *args], stderr=subprocess.PIPE,
                           text=True, check=False)
        return proc.stderr.strip() if proc.returncode == 0 else None

    def menu(self, text: str, items: Sequence[tuple[str, str]]) -> str | None:
        """Pick one of (tag, label) items."""
        flat = [part for item in items for part in item]
        return self._ask(["--menu", text, "20", "76", str(min(len(items), 12)), *flat])

    def input(self, text: str, secret: bool = False) -> str | None:
        """Ask for a line of text (hidden for a password)."""
        return self._ask(["--passwordbox" if secret else "--inputbox", text, "10", "60"])

    def message(self, text: str) -> None:
        """Show a message until OK."""
        self._ask(["--msgbox", text, "14", "76"])


def login(server: str, ask: Whiptail) -> Api | None:
    """Sign in with a user's name and password; return a connection with the session token."""
    username = ask.input("User name")
    if not username:
        return None
    password = ask.input(f"Password of {username}", secret=True)
    if password is None:
        return None
    api = Api(server, "")
    answer = api.post(LOGIN, {"username": username, "password": password})
    api.token = answer["token"]
    return api


def deployable(images: list[dict]) -> list[dict]:
    """Keep the images a deploy can use: enabled and holding an uploaded copy."""
    return [i for i in images if i.get("enabled", True) and i.get("last_upload_at")]


def pick_image(api: Api, ask: Whiptail, kind: str) -> str | None:
    """Ask for the image: deploy lists deployable ones, upload also offers a new image."""
    images = api.get("/images?on_demand=1").get("images", [])
    if kind == "deploy":
        images = deployable(images)
        if not images:
            ask.message("No image can be deployed on demand: none holds an upload yet.")
            return None
    items = [(i["name"], (i.get("description") or i.get("type", ""))[:50]) for i in images]
    if kind == "upload":
        items.append((NEW_IMAGE, "new image"))
    picked = ask.menu(f"Image to {kind}", items)
    if picked != NEW_IMAGE:
        return picked
    name = ask.input("Name of the new image (letters, digits, - and _)")
    if not name:
        return None
    api.post("/api/v1/images", {"name": name, "environment": "linux", "type": "block"})
    return name


def pick_profile(api: Api, ask: Whiptail, image: str) -> int | None:
    """Ask for the image's profile (no question when it has one)."""
    profiles = api.get(f"/images/{image}/profiles").get("profiles", [])
    if len(profiles) <= 1:
        return profiles[0]["id"] if profiles else None
    picked = ask.menu(f"Profile of {image}",
                      [(str(p["id"]), p["name"]) for p in profiles])
    return int(picked) if picked else None


def run_choice(api: Api, kind: str, image: str, profile: int | None,
               disks: Callable[[str], list[str]]) -> dict:
    """Run the chosen upload or deploy on the disks automatic selection finds."""
    if kind == "upload":
        from client.upload import upload_image

        return upload_image(api, image, profile, disks(kind))
    from client.deploy import deploy_image

    return deploy_image(api, image, profile, disks(kind))


def auto_disks(api: Api, image: str, profile: int | None) -> Callable[[str], list[str]]:
    """Return the disk chooser of an on-demand run (deploy checks the profile's schema)."""

    def choose(kind: str) -> list[str]:
        found = autodisk.local_disks(_cmdline())
        if kind == "upload":
            return autodisk.select_for_upload(found)
        options = api.get(f"/profiles/{profile}/options") if profile else {}
        return autodisk.select_for_deploy(found, autodisk.wants_from_profile(options, None))

    return choose


def _cmdline() -> str:
    """Return the kernel command line ('' outside the imaging environment)."""
    try:
        with open("/proc/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def menu(server: str, ask: Whiptail) -> str:
    """Run the menu until the person leaves; return the action they chose at the end."""
    api = None
    while True:
        choice = ask.menu("Castor: this computer has no task. What now?", [
            ("deploy", "Deploy an image to this computer"),
            ("upload", "Upload this computer's disks as an image"),
            ("shell", "Exit to a shell"), ("reboot", "Reboot"), ("power_off", "Power off")])
        if choice in (None, "shell"):
            return "exit_to_shell"
        if choice in ("reboot", "power_off"):
            return choice
        try:
            api = api or login(server, ask)
            if api is None:
                continue
            image = pick_image(api, ask, choice)
            if not image:
                continue
            profile = pick_profile(api, ask, image)
            run_choice(api, choice, image, profile, auto_disks(api, image, profile))
            ask.message(f"On-demand {choice} of {image} done.")
        except ApiError as exc:
            if exc.status == 401:
                api = None
            ask.message(f"The server refused: {exc}")
        except ClientError as exc:
            log.error("on-demand %s failed: %s", choice, exc)
            ask.message(f"On-demand {choice} failed, nothing more was written:\n\n{exc}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse --server, run the menu, then the action chosen (the init runs it on exit)."""
    parser = argparse.ArgumentParser(prog="castor-ondemand")
    parser.add_argument("--server", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    action = menu(args.server, Whiptail())
    print(f"castor: on-demand menu left: {action}", flush=True)
    if action == "exit_to_shell":
        return 0
    subprocess.run(["reboot" if action == "reboot" else "poweroff"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
