"""The on-demand console menu, driven through a scripted whiptail."""

from __future__ import annotations

import subprocess

import pytest

from client import ondemand
from client.api import ApiError


class ScriptedWhiptail(ondemand.Whiptail):
    """Answer each dialog from a list, recording what was asked."""

    def __init__(self, answers: list[str | None]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.asked: list[list[str]] = []

    def _ask(self, args: list[str]) -> str | None:
        self.asked.append(args)
        return self.answers.pop(0)


class FakeApi:
    """The client API calls the menu makes."""

    def __init__(self, images: list[dict], profiles: list[dict]) -> None:
        self.images, self.profiles, self.posts = images, profiles, []

    def get(self, path: str) -> dict:
        if path.startswith("/images?"):
            return {"images": self.images}
        if path.endswith("/profiles"):
            return {"profiles": self.profiles}
        raise AssertionError(path)

    def post(self, path: str, body: dict) -> dict:
        self.posts.append((path, body))
        return {}


IMAGES = [{"name": "win11", "type": "block", "enabled": True, "last_upload_at": "2026-01-01Z"},
          {"name": "empty", "type": "block", "enabled": True, "last_upload_at": None}]


def test_whiptail_reads_the_answer_from_stderr():
    calls = []

    def runner(argv, **kw):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, stderr="deploy\n")

    assert ondemand.Whiptail(runner=runner).menu("pick", [("deploy", "Deploy")]) == "deploy"
    assert calls[0][:4] == ["whiptail", "--title", "Castor on demand", "--menu"]
    cancelled = ondemand.Whiptail(runner=lambda argv, **kw: subprocess.CompletedProcess(
        argv, 1, stderr=""))
    assert cancelled.input("name") is None


def test_deploy_lists_only_images_holding_an_upload():
    ask = ScriptedWhiptail(["win11"])
    assert ondemand.pick_image(FakeApi(IMAGES, []), ask, "deploy") == "win11"
    menu = ask.asked[0]
    assert "win11" in menu and "empty" not in menu and ondemand.NEW_IMAGE not in menu


def test_no_deployable_image_says_so():
    ask = ScriptedWhiptail([None])
    assert ondemand.pick_image(FakeApi(IMAGES[1:], []), ask, "deploy") is None
    assert "--msgbox" in ask.asked[0]


def test_upload_offers_a_new_image_and_creates_it():
    api = FakeApi(IMAGES, [])
    ask = ScriptedWhiptail([ondemand.NEW_IMAGE, "lab-pc-2026"])
    assert ondemand.pick_image(api, ask, "upload") == "lab-pc-2026"
    assert "empty" in ask.asked[0]
    assert api.posts == [("/api/v1/images", {"name": "lab-pc-2026", "environment": "linux",
                                             "type": "block"})]


def test_profile_is_asked_only_when_there_are_several():
    assert ondemand.pick_profile(FakeApi([], [{"id": 4, "name": "default"}]),
                                 ScriptedWhiptail([]), "win11") == 4
    ask = ScriptedWhiptail(["9"])
    assert ondemand.pick_profile(FakeApi([], [{"id": 4, "name": "default"},
                                              {"id": 9, "name": "lab"}]), ask, "win11") == 9


def test_menu_signs_in_runs_the_choice_and_reports_failures(monkeypatch):
    api = FakeApi(IMAGES, [{"id": 4, "name": "default"}])
    monkeypatch.setattr(ondemand, "login", lambda server, ask: api)
    runs = []

    def run_choice(api_, kind, image, profile, disks):
        runs.append((kind, image, profile))
        raise ondemand.ClientError("2 disks could take the image's disk 0")

    monkeypatch.setattr(ondemand, "run_choice", run_choice)
    ask = ScriptedWhiptail(["deploy", "win11", None, "power_off"])
    assert ondemand.menu("http://s", ask) == "power_off"
    assert runs == [("deploy", "win11", 4)]
    failure = ask.asked[2]
    assert failure[0] == "--msgbox" and "nothing more was written" in failure[1]


def test_refused_login_is_shown_and_asked_again(monkeypatch):
    def login(server, ask):
        raise ApiError(401, "wrong user name or password")

    monkeypatch.setattr(ondemand, "login", login)
    ask = ScriptedWhiptail(["upload", None, "shell"])
    assert ondemand.menu("http://s", ask) == "exit_to_shell"
    assert "wrong user name or password" in ask.asked[1][1]


@pytest.mark.parametrize("choice", ["reboot", None])
def test_leaving_the_menu(choice):
    assert ondemand.menu("http://s", ScriptedWhiptail([choice])) == (choice or "exit_to_shell")
