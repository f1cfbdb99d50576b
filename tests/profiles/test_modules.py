"""Module pages (scripts, syspreps, file copies) and their assignment to profiles."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from app.extensions import db
from app.models import FileCopyModule, History, ProfileScript, ScriptModule, SysprepModule

HX = {"HX-Request": "true"}


def _create(client, kind: str, **data) -> int:
    response = client.post(f"/modules/{kind}/new", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def test_index_and_kind_pages(client) -> None:
    page = client.get("/modules/").get_data(as_text=True)
    for label in ("Script modules", "Sysprep modules", "File copy modules"):
        assert label in page
    assert client.get("/modules/scripts/").status_code == 200
    assert client.get("/modules/bogus/").status_code == 404


def test_script_module_crud_with_lf_endings(client, app) -> None:
    module_id = _create(client, "scripts", name="set-hostname", description="d",
                        contents="#!/bin/bash\r\necho hi\r\n")
    with app.app_context():
        assert db.session.get(ScriptModule, module_id).contents == "#!/bin/bash\necho hi\n"
    duplicate = client.post("/modules/scripts/new", data={"name": "set-hostname"})
    assert duplicate.status_code == 422 and "exists" in duplicate.get_data(as_text=True)
    bad_name = client.post("/modules/scripts/new", data={"name": "../etc"})
    assert bad_name.status_code == 422
    client.post(f"/modules/scripts/{module_id}", data={"name": "set-hostname",
                                                      "contents": "echo changed"})
    found = client.get("/modules/scripts/?q=hostname", headers=HX).get_data(as_text=True)
    assert "set-hostname" in found and "<html" not in found
    missing = client.get("/modules/scripts/?q=zzz", headers=HX).get_data(as_text=True)
    assert "set-hostname" not in missing
    deleted = client.post(f"/modules/scripts/{module_id}/delete", data={"confirmed": "1"})
    assert deleted.status_code == 303
    with app.app_context():
        assert db.session.get(ScriptModule, module_id) is None
        actions = db.session.scalars(db.select(History.action).filter_by(
            object_type="module", object_id=module_id).order_by(History.id)).all()
        assert actions == ["create", "update", "delete"]


def test_sysprep_tags_must_be_xml_tags(client, app) -> None:
    for opening, closing, message in [
        ("ComputerName", "</ComputerName>", "not an XML opening tag"),
        ("<ComputerName>", "ComputerName", "not an XML closing tag"),
        ("<Computer Name", "</Computer>", "not an XML opening tag"),
        ("<ComputerName>", "</Other>", "does not close"),
    ]:
        response = client.post("/modules/syspreps/new", data={
            "name": "name", "opening_tag": opening, "closing_tag": closing})
        assert response.status_code == 422
        assert message in response.get_data(as_text=True).replace("&lt;", "<")
    module_id = _create(client, "syspreps", name="name", opening_tag="<ComputerName>",
                        closing_tag="</ComputerName>", contents="PC-01")
    with app.app_context():
        assert db.session.get(SysprepModule, module_id).opening_tag == "<ComputerName>"
        assert db.session.scalar(db.select(db.func.count()).select_from(SysprepModule)) == 1


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "data")
    return buffer.getvalue()


def test_file_copy_uploads_and_refuses_traversal(client, app) -> None:
    bad = client.post("/modules/filecopies/new", data={"name": "drivers",
                                                       "destination_folder": "../x"})
    assert bad.status_code == 422
    module_id = _create(client, "filecopies", name="drivers",
                        destination_folder="/Windows/Drivers", unzip="y")
    folder = Path(app.config["STORAGE_PATH"]) / "modules" / str(module_id)
    ok = client.post(f"/modules/filecopies/{module_id}/files", data={"files": [
        (io.BytesIO(b"ini"), "net/e1000.inf"), (io.BytesIO(_zip(["a/b.txt"])), "pack.zip")]},
        content_type="multipart/form-data", follow_redirects=True)
    assert "2 file(s) uploaded" in ok.get_data(as_text=True)
    assert (folder / "net" / "e1000.inf").read_bytes() == b"ini"
    for name, payload in [("evil.zip", _zip(["ok.txt", "../../etc/cron.d/x"])),
                          ("abs.zip", _zip(["/etc/passwd"])),
                          ("../escape.txt", b"x"), ("notzip.zip", b"plain")]:
        response = client.post(f"/modules/filecopies/{module_id}/files", data={"files": [
            (io.BytesIO(b"keep"), "other.txt"), (io.BytesIO(payload), name)]},
            content_type="multipart/form-data", follow_redirects=True)
        assert "Nothing was uploaded" in response.get_data(as_text=True), name
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["e1000.inf",
                                                                        "pack.zip"]
    page = client.get(f"/modules/filecopies/{module_id}").get_data(as_text=True)
    assert "net/e1000.inf" in page and "pack.zip" in page
    client.post(f"/modules/filecopies/{module_id}/files/delete",
                data={"path": "pack.zip", "confirmed": "1"})
    assert not (folder / "pack.zip").exists()
    refused = client.post(f"/modules/filecopies/{module_id}/files/delete",
                          data={"path": "../../castor.db"}, follow_redirects=True)
    assert "not a file of this module" in refused.get_data(as_text=True)
    client.post(f"/modules/filecopies/{module_id}/delete", data={"confirmed": "1"})
    assert not folder.exists()
    with app.app_context():
        assert db.session.get(FileCopyModule, module_id) is None


def _tab(image_id: int, profile_id: int, tab: str) -> str:
    return f"/images/{image_id}/profiles/{profile_id}/{tab}"


def _order(app, profile_id: int) -> list[tuple[str, int, str]]:
    with app.app_context():
        rows = db.session.scalars(db.select(ProfileScript).filter_by(profile_id=profile_id)
                                  .order_by(ProfileScript.priority, ProfileScript.id)).all()
        return [(r.module.name, r.priority, r.run_when) for r in rows]


def test_script_assignments_order_reorder_and_remove(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    first = _create(client, "scripts", name="first", contents="true")
    second = _create(client, "scripts", name="second", contents="true")
    url = _tab(image_id, profile_id, "scripts")
    assert client.post(url, data={"action": "add", "module_id": second,
                                  "run_when": "after_file_copy"}).status_code == 303
    client.post(url, data={"action": "add", "module_id": first, "priority": "5",
                           "run_when": "before_imaging"})
    assert _order(app, profile_id) == [("first", 5, "before_imaging"),
                                       ("second", 10, "after_file_copy")]
    again = client.post(url, data={"action": "add", "module_id": first,
                                   "run_when": "before_imaging"})
    assert again.status_code == 422 and "already assigned" in again.get_data(as_text=True)
    bad = client.post(url, data={"action": "add", "module_id": 999, "run_when": "x"})
    assert bad.status_code == 422
    with app.app_context():
        ids = {r.module.name: r.id for r in db.session.scalars(db.select(ProfileScript))}
    client.post(url, data={"action": "up", "assignment_id": ids["second"]})
    assert [name for name, _p, _w in _order(app, profile_id)] == ["second", "first"]
    client.post(url, data={"action": "update", "assignment_id": ids["second"],
                           "priority": "50", "run_when": "before_file_copy"})
    assert _order(app, profile_id) == [("first", 20, "before_imaging"),
                                       ("second", 50, "before_file_copy")]
    page = client.get(url, headers=HX).get_data(as_text=True)
    assert page.index(">first<") < page.index(">second<")
    client.post(url, data={"action": "remove", "assignment_id": ids["first"],
                           "confirmed": "1"})
    assert _order(app, profile_id) == [("second", 50, "before_file_copy")]


def test_file_copy_destination_partition_and_sysprep_tab(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    module_id = _create(client, "filecopies", name="drivers", destination_folder="/")
    url = _tab(image_id, profile_id, "filecopy")
    bad = client.post(url, data={"action": "add", "module_id": module_id,
                                 "destination_partition": "/dev/sda1; rm"})
    assert bad.status_code == 422 and "vg-lv" in bad.get_data(as_text=True)
    client.post(url, data={"action": "add", "module_id": module_id,
                           "destination_partition": "vg0-root"})
    assert "vg0-root" in client.get(url).get_data(as_text=True)
    sysprep = _create(client, "syspreps", name="tz", opening_tag="<TimeZone>",
                      closing_tag="</TimeZone>", contents="UTC")
    tab = _tab(image_id, profile_id, "sysprep")
    assert client.post(tab, data={"action": "add", "module_id": sysprep}).status_code == 303
    assert ">tz<" in client.get(tab).get_data(as_text=True)
    used = client.get(f"/modules/syspreps/{sysprep}").get_data(as_text=True)
    assert f'href="{tab}">ubuntu / default</a>' in used
