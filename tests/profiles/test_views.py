"""Profile pages: list, new, every tab as full page and htmx partial, clone, delete."""

from __future__ import annotations

import json

from app.filters import human_bytes
from app.imaging.minsize import disk_minimums
from app.profiles import selections
from tests.profiles.conftest import history_actions, load_profile

HX = {"HX-Request": "true"}
TABS = ("general", "pxe", "task", "upload", "deploy", "multicast", "scripts", "sysprep",
        "filecopy")


def url(image_id: int, profile_id: int, tab: str) -> str:
    return f"/images/{image_id}/profiles/{profile_id}/{tab}"


def test_every_tab_is_a_full_page_and_an_htmx_partial(client, linux_image) -> None:
    image_id, profile_id = linux_image
    for tab in TABS:
        full = client.get(url(image_id, profile_id, tab))
        assert full.status_code == 200, tab
        page = full.get_data(as_text=True)
        assert "<html" in page and 'id="profile-tab"' in page
        assert f'href="{url(image_id, profile_id, tab)}"' in page
        partial = client.get(url(image_id, profile_id, tab), headers=HX)
        fragment = partial.get_data(as_text=True)
        assert partial.status_code == 200, tab
        assert "<html" not in fragment
        assert fragment.lstrip().startswith('<div id="profile-tab">')
        assert "HX-Request" in partial.headers.get("Vary", "")


def test_unknown_tab_and_foreign_profile_are_404(client, linux_image, winpe_image) -> None:
    image_id, profile_id = linux_image
    assert client.get(url(image_id, profile_id, "bogus")).status_code == 404
    assert client.get(url(winpe_image[0], profile_id, "general")).status_code == 404
    assert client.get(url(999, profile_id, "general")).status_code == 404


def test_index_lists_profiles_and_waits_for_a_schema(client, linux_image) -> None:
    image_id, _ = linux_image
    page = client.get(f"/images/{image_id}/profiles/").get_data(as_text=True)
    assert "default" in page and "after the first upload" in page
    assert "New Profile" in page and "Clone" in page
    assert "Delete profile" not in page  # the only profile cannot be deleted


def test_index_shows_minimum_size_per_disk(client, schema_image, schema) -> None:
    image_id, profile_id = schema_image
    page = client.get(f"/images/{image_id}/profiles/").get_data(as_text=True)
    first, second = (human_bytes(size) for size in disk_minimums(schema, None))
    assert f"Disk 0: {first}" in page and f"Disk 1: {second}" in page


def test_winpe_hides_linux_options_and_pxe_tab(client, winpe_image) -> None:
    image_id, profile_id = winpe_image
    assert client.get(url(image_id, profile_id, "pxe")).status_code == 404
    upload = client.get(url(image_id, profile_id, "upload")).get_data(as_text=True)
    assert "Compression Algorithm" not in upload and "Only Upload Schema" in upload
    deploy = client.get(url(image_id, profile_id, "deploy")).get_data(as_text=True)
    assert "Set Bootmgr As First Boot Device" in deploy and "Update BCD" not in deploy
    general = client.get(url(image_id, profile_id, "general")).get_data(as_text=True)
    assert "PXE Boot Options" not in general


def test_linux_hides_winpe_only_option(client, linux_image) -> None:
    image_id, profile_id = linux_image
    deploy = client.get(url(image_id, profile_id, "deploy")).get_data(as_text=True)
    assert "Set Bootmgr" not in deploy and "Update BCD" in deploy


def test_new_profile_and_duplicate_name(client, app, linux_image) -> None:
    image_id, _ = linux_image
    response = client.post(f"/images/{image_id}/profiles/new",
                           data={"name": "lab", "description": "for the lab"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/general")
    again = client.post(f"/images/{image_id}/profiles/new", data={"name": "lab"})
    assert again.status_code == 422
    assert "already has a profile named" in again.get_data(as_text=True)
    assert history_actions(app, image_id) == ["profile_create"]


def test_general_tab_saves_and_refuses_duplicate_model_match(client, app, linux_image,
                                                             winpe_image) -> None:
    image_id, profile_id = linux_image
    data = {"name": "default", "description": "d", "model_match": "OptiPlex 7080",
            "model_match_criteria": "equals"}
    response = client.post(url(image_id, profile_id, "general"), data=data)
    assert response.status_code == 303
    assert load_profile(app, profile_id)["model_match"] == "OptiPlex 7080"
    other_image, other_profile = winpe_image
    clash = client.post(url(other_image, other_profile, "general"),
                        data={**data, "model_match": "optiplex 7080 ",
                              "model_match_criteria": "contains"})
    assert clash.status_code == 422
    assert "already used by profile" in clash.get_data(as_text=True)
    assert load_profile(app, other_profile)["model_match"] == ""
    empty = client.post(url(other_image, other_profile, "general"),
                        data={**data, "model_match": " "})
    assert "enter a model string" in empty.get_data(as_text=True)
    assert history_actions(app, image_id) == ["profile_update"]
    assert history_actions(app, other_image) == []


def test_pxe_tab_offers_boot_files_and_shows_empty_state(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    page = client.get(url(image_id, profile_id, "pxe")).get_data(as_text=True)
    assert "has no kernels or boot images" in page
    boot = app.config["BOOT_FILES_PATH"]
    import pathlib

    folder = pathlib.Path(boot)
    folder.mkdir(parents=True)
    for name in ("vmlinuz-6.1", "initrd-6.1.img", "readme.txt"):
        (folder / name).write_text("x")
    page = client.get(url(image_id, profile_id, "pxe")).get_data(as_text=True)
    assert 'value="vmlinuz-6.1"' in page and 'value="initrd-6.1.img"' in page
    assert "readme.txt" not in page
    saved = client.post(url(image_id, profile_id, "pxe"),
                        data={"pxe_kernel": "vmlinuz-6.1", "pxe_boot_image": "initrd-6.1.img",
                              "kernel_args": "quiet"})
    assert saved.status_code == 303
    assert load_profile(app, profile_id)["pxe_kernel"] == "vmlinuz-6.1"
    bad = client.post(url(image_id, profile_id, "pxe"),
                      data={"pxe_kernel": "../../etc/passwd", "pxe_boot_image": ""})
    assert bad.status_code == 422 and "not in the boot files folder" in bad.get_data(True)


def test_task_tab_saves(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    client.post(url(image_id, profile_id, "task"),
                data={"web_cancel": "y", "task_completed_action": "power_off"})
    saved = load_profile(app, profile_id)
    assert saved["web_cancel"] is True and saved["task_completed_action"] == "power_off"


UPLOAD = {"compression_algorithm": "zstd", "compression_level": "3"}


LEVELS = [("zstd", 20, False), ("zstd", 19, True), ("gzip", 10, False), ("gzip", 9, True),
          ("lz4", 12, False), ("lz4", 1, True), ("none", 3, False), ("none", 0, True),
          ("zstd", 0, False), ("zstd", 3, True)]


def test_compression_level_ranges(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    before = ("zstd", 3)
    for algorithm, level, ok in LEVELS:
        response = client.post(url(image_id, profile_id, "upload"),
                               data={"compression_algorithm": algorithm,
                                     "compression_level": str(level)})
        saved = load_profile(app, profile_id)
        stored = (saved["compression_algorithm"], saved["compression_level"])
        if ok:
            assert response.status_code == 303 and stored == (algorithm, level)
            before = stored
        else:
            assert response.status_code == 422, (algorithm, level)
            assert "takes" in response.get_data(as_text=True) and stored == before


def test_schema_only_and_custom_schema_are_refused_together(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    response = client.post(url(image_id, profile_id, "upload"),
                           data={**UPLOAD, "upload_schema_only": "y",
                                 "use_custom_upload_schema": "y"})
    assert response.status_code == 422
    assert "cannot both be on" in response.get_data(as_text=True)
    saved = load_profile(app, profile_id)
    assert not saved["upload_schema_only"] and not saved["use_custom_upload_schema"]


def test_upload_tab_says_schema_tables_come_after_first_upload(client, linux_image) -> None:
    image_id, profile_id = linux_image
    page = client.get(url(image_id, profile_id, "upload")).get_data(as_text=True)
    assert "schema tables appear after the first upload" in page


def test_custom_upload_schema_is_a_copy(client, app, schema_image, schema) -> None:
    image_id, profile_id = schema_image
    page = client.get(url(image_id, profile_id, "upload")).get_data(as_text=True)
    assert 'name="d0.p2.upload"' in page and 'name="d0.v0.l1.fixed"' in page
    form = {**UPLOAD, "use_custom_upload_schema": "y", "schema_table": "upload",
            "d0.upload": "on", "d0.p1.upload": "on", "d0.p2.upload": "on", "d0.p2.fixed": "on",
            "d0.p3.upload": "on", "d0.v0.l0.upload": "on"}
    assert client.post(url(image_id, profile_id, "upload"), data=form).status_code == 303
    stored = json.loads(load_profile(app, profile_id)["custom_upload_schema"])
    assert stored["disks"][1]["upload"] is False
    assert stored["disks"][0]["partitions"][1]["fixed"] is True
    assert stored["disks"][0]["volume_groups"][0]["logical_volumes"][1]["upload"] is False
    with app.app_context():
        from app.extensions import db
        from app.models import Image

        assert json.loads(db.session.get(Image, image_id).schema_json) == schema


def test_deploy_schema_sizes_standard_and_export(client, app, schema_image) -> None:
    image_id, profile_id = schema_image
    base = {"partition_method": "dynamic", "modify_image_schema": "y",
            "schema_table": "deploy", "d0.deploy": "on", "d0.p1.deploy": "on",
            "d0.p2.deploy": "on", "d0.p3.deploy": "on", "d0.v0.l0.deploy": "on",
            "d0.v0.l1.deploy": "on", "d1.deploy": "on", "d1.p1.deploy": "on",
            "d1.destination": "/dev/sdc"}
    over = {**base, "d0.p2.size": "70", "d0.p2.unit": "%", "d0.p3.size": "40",
            "d0.p3.unit": "%"}
    refused = client.post(url(image_id, profile_id, "deploy"), data=over)
    assert refused.status_code == 422 and "over 100%" in refused.get_data(as_text=True)
    assert 'value="70"' in refused.get_data(as_text=True)  # the edits are kept on screen
    assert load_profile(app, profile_id)["deploy_schema"] is None
    bad_dest = client.post(url(image_id, profile_id, "deploy"),
                           data={**base, "d1.destination": "sdc"})
    assert "not a device path" in bad_dest.get_data(as_text=True)
    ok = client.post(url(image_id, profile_id, "deploy"),
                     data={**base, "d0.p2.size": "30", "d0.p2.unit": "GB"})
    assert ok.status_code == 303
    stored = json.loads(load_profile(app, profile_id)["deploy_schema"])
    assert stored["disks"][0]["partitions"][1]["custom_size"] == {"value": 30, "unit": "GB"}
    assert stored["disks"][1]["destination"] == "/dev/sdc"
    standard = client.post(url(image_id, profile_id, "deploy"),
                           data={**base, "partition_method": "standard"})
    assert standard.status_code == 422
    assert "exactly one partition" in standard.get_data(as_text=True)
    exported = client.get(f"/images/{image_id}/profiles/{profile_id}/export-schema")
    assert exported.status_code == 200 and "attachment" in exported.headers[
        "Content-Disposition"]
    assert exported.get_json()["disks"][0]["partitions"][1]["custom_size"]["value"] == 30
    page = client.get(url(image_id, profile_id, "deploy")).get_data(as_text=True)
    assert 'value="30"' in page and "Export Schema" in page


def test_custom_script_is_stored_with_lf(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    script = "sgdisk -Z /dev/sda\r\nsgdisk -n 1:0:0 /dev/sda\r\n"
    client.post(url(image_id, profile_id, "deploy"),
                data={"partition_method": "custom_script", "custom_partition_script": script})
    saved = load_profile(app, profile_id)
    assert saved["partition_method"] == "custom_script"
    assert saved["custom_partition_script"] == script.replace("\r\n", "\n")
    empty = client.post(url(image_id, profile_id, "deploy"),
                        data={"partition_method": "custom_script",
                              "custom_partition_script": ""})
    assert "needs a script" in empty.get_data(as_text=True)


def test_minimum_size_follows_edited_sizes(client, schema_image, schema) -> None:
    image_id, profile_id = schema_image
    esp_only = selections.merge(schema, None, "deploy")
    for part in esp_only["disks"][0]["partitions"][1:]:
        part["deploy"] = False
    expected = human_bytes(disk_minimums(schema, esp_only)[0])
    base = f"/images/{image_id}/profiles/{profile_id}/minimum-size"
    stored = client.get(base, headers=HX).get_data(as_text=True)
    whole = human_bytes(disk_minimums(schema, None)[0])
    assert f"Disk 0: {whole}" in stored and "<html" not in stored
    query = ("?schema_table=deploy&modify_image_schema=y&partition_method=dynamic"
             "&d0.deploy=on&d0.p1.deploy=on&d1.deploy=on&d1.p1.deploy=on")
    smaller = client.get(base + query, headers=HX).get_data(as_text=True)
    assert f"Disk 0: {expected}" in smaller and expected != whole
    percent = client.get(base + query + "&d0.p1.size=50&d0.p1.unit=%25",
                         headers=HX).get_data(as_text=True)
    assert "Disk 0: N/A" in percent
    full = client.get(base).get_data(as_text=True)
    assert "<html" in full and "Minimum client size" in full


def test_multicast_tab_validates_arguments(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    bad = client.post(url(image_id, profile_id, "multicast"),
                      data={"multicast_sender_args": "--max-bitrate 10m; reboot"})
    assert bad.status_code == 422 and "metacharacters" in bad.get_data(as_text=True)
    castor = client.post(url(image_id, profile_id, "multicast"),
                         data={"multicast_receiver_args": "--portbase 9000"})
    assert "set by Castor" in castor.get_data(as_text=True)
    ok = client.post(url(image_id, profile_id, "multicast"),
                     data={"multicast_sender_args": "--max-bitrate 10m",
                           "multicast_receiver_args": "--nosync"})
    assert ok.status_code == 303
    assert load_profile(app, profile_id)["multicast_sender_args"] == "--max-bitrate 10m"


def test_htmx_post_answers_the_partial_with_errors(client, linux_image) -> None:
    image_id, profile_id = linux_image
    response = client.post(url(image_id, profile_id, "upload"), headers=HX,
                           data={"compression_algorithm": "gzip", "compression_level": "12"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert "gzip takes a level from 1 to 9" in body


def test_clone_copies_everything_but_model_match(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    client.post(url(image_id, profile_id, "general"),
                data={"name": "default", "model_match": "X1", "model_match_criteria": "equals"})
    client.post(url(image_id, profile_id, "upload"),
                data={"compression_algorithm": "lz4", "compression_level": "2"})
    first = client.post(f"/images/{image_id}/profiles/{profile_id}/clone")
    second = client.post(f"/images/{image_id}/profiles/{profile_id}/clone")
    assert first.status_code == 303
    clone_id = int(first.headers["Location"].split("/")[-2])
    clone = load_profile(app, clone_id)
    assert clone["name"] == "default_1" and clone["compression_algorithm"] == "lz4"
    assert clone["compression_level"] == 2
    assert clone["model_match"] == "" and clone["model_match_criteria"] == "disabled"
    assert load_profile(app, int(second.headers["Location"].split("/")[-2]))[
        "name"] == "default_2"
    assert history_actions(app, image_id)[-2:] == ["profile_clone", "profile_clone"]


def test_delete_refuses_the_last_profile(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    response = client.post(f"/images/{image_id}/profiles/{profile_id}/delete",
                           follow_redirects=True)
    assert "at least one profile" in response.get_data(as_text=True)
    assert load_profile(app, profile_id) is not None
    clone = client.post(f"/images/{image_id}/profiles/{profile_id}/clone")
    clone_id = int(clone.headers["Location"].split("/")[-2])
    deleted = client.post(f"/images/{image_id}/profiles/{clone_id}/delete",
                          data={"confirmed": "1"})
    assert deleted.status_code == 303 and load_profile(app, clone_id) is None
    assert history_actions(app, image_id)[-1] == "profile_delete"


def test_pages_need_sign_in(anon_client, linux_image) -> None:
    image_id, profile_id = linux_image
    response = anon_client.get(url(image_id, profile_id, "general"))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_unreadable_schema_is_treated_as_no_schema(client, app, linux_image) -> None:
    image_id, profile_id = linux_image
    with app.app_context():
        from app.extensions import db
        from app.models import Image

        db.session.get(Image, image_id).schema_json = "{not json"
        db.session.commit()
    assert "known after the first upload" in client.get(
        f"/images/{image_id}/profiles/").get_data(as_text=True)
    deploy = client.get(url(image_id, profile_id, "deploy")).get_data(as_text=True)
    assert "schema tables appear after the first upload" in deploy
    assert client.get(f"/images/{image_id}/profiles/{profile_id}/export-schema").status_code \
        == 404


def test_search_profiles_with_htmx_rows(client, linux_image) -> None:
    image_id, profile_id = linux_image
    client.post(f"/images/{image_id}/profiles/new", data={"name": "laptops"})
    rows = client.get(f"/images/{image_id}/profiles/?q=LAP", headers=HX).get_data(as_text=True)
    assert "laptops" in rows and ">default<" not in rows and "<html" not in rows
    page = client.get(f"/images/{image_id}/profiles/?q=nothing").get_data(as_text=True)
    assert "No profile matches" in page and "<html" in page


def test_schema_table_problems_sit_on_their_rows(client, app, schema_image) -> None:
    image_id, profile_id = schema_image
    form = {"partition_method": "dynamic", "modify_image_schema": "y",
            "schema_table": "deploy", "d0.deploy": "on", "d0.p1.deploy": "on",
            "d0.p2.deploy": "on", "d0.p2.fixed": "on", "d0.p2.size": "30", "d0.p2.unit": "GB",
            "d0.v0.l0.deploy": "on", "d0.v0.l0.size": "0", "d0.v0.l0.unit": "GB",
            "d1.deploy": "on", "d1.p1.deploy": "on", "d1.destination": "sdc"}
    refused = client.post(url(image_id, profile_id, "deploy"), data=form)
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)

    def row(name: str) -> str:
        start = page.index(f'<tr class="row-errors" data-row="{name}">')
        return page[start:page.index("</tr>", start)]

    assert "Fixed keeps the partition" in row("d0.p2")
    assert "must be a number above 0" in row("d0.v0.l0")
    assert "not a device path" in row("d1")
    # each problem right under the row whose inputs caused it
    assert page.index('name="d0.p2.fixed"') < page.index('data-row="d0.p2"') < page.index(
        'name="d0.p3.deploy"')
    assert 'data-row="d0.p1"' not in page
    assert load_profile(app, profile_id)["deploy_schema"] is None
