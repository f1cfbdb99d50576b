"""REST API of profiles, assignments and modules: same rules as the pages."""

from __future__ import annotations

import io
import json
import zipfile

from tests.profiles.conftest import history_actions, load_profile


def _base(image_id: int) -> str:
    return f"/api/v1/images/{image_id}/profiles"


def test_token_is_required(client, linux_image) -> None:
    image_id, _ = linux_image
    response = client.get(_base(image_id))
    assert response.status_code == 401 and "token" in response.get_json()["error"]


def test_list_get_patch_profile(client, app, api_headers, linux_image) -> None:
    image_id, profile_id = linux_image
    listed = client.get(_base(image_id), headers=api_headers).get_json()
    assert [p["name"] for p in listed] == ["default"]
    profile = listed[0]
    assert profile["compression_algorithm"] == "zstd" and profile["compression_level"] == 3
    assert profile["scripts"] == [] and profile["deploy_schema"] is None
    changed = client.patch(f"{_base(image_id)}/{profile_id}", headers=api_headers,
                           json={"compression_algorithm": "gzip", "partition_method": "original",
                                 "upload_schema_only": True})
    assert changed.status_code == 200
    body = changed.get_json()
    # A new algorithm without a level takes that algorithm's default level.
    assert body["compression_level"] == 6 and body["partition_method"] == "original"
    # The GET shape can be sent back as is.
    again = client.patch(f"{_base(image_id)}/{profile_id}", headers=api_headers, json=body)
    assert again.status_code == 200
    assert history_actions(app, image_id) == ["profile_update"]


def test_patch_errors_save_nothing(client, app, api_headers, linux_image, winpe_image) -> None:
    image_id, profile_id = linux_image
    url = f"{_base(image_id)}/{profile_id}"
    cases = [
        ({"compression_algorithm": "lz4", "compression_level": 10}, "compression_level"),
        ({"upload_schema_only": True, "use_custom_upload_schema": True},
         "use_custom_upload_schema"),
        ({"web_cancel": "yes"}, "web_cancel"),
        ({"compression_level": "3"}, "compression_level"),
        ({"partition_method": "magic"}, "partition_method"),
        ({"no_such_option": 1}, "no_such_option"),
        ({"multicast_sender_args": "--file /etc/shadow"}, "multicast_sender_args"),
        ({"deploy_schema": {"disks": []}}, "deploy_schema"),
        ({"name": "x", "model_match": "", "model_match_criteria": "equals"}, "model_match"),
    ]
    for body, field in cases:
        response = client.patch(url, headers=api_headers, json=body)
        assert response.status_code == 422, body
        assert field in response.get_json()["errors"], response.get_json()
    assert load_profile(app, profile_id)["compression_algorithm"] == "zstd"
    assert load_profile(app, profile_id)["name"] == "default"
    winpe_id, winpe_profile = winpe_image
    linux_only = client.patch(f"{_base(winpe_id)}/{winpe_profile}", headers=api_headers,
                              json={"update_bcd": True})
    assert "winpe" in linux_only.get_json()["errors"]["update_bcd"]
    assert client.patch(url, headers=api_headers, json=[]).status_code == 400
    assert client.get(f"{_base(image_id)}/999", headers=api_headers).status_code == 404
    assert client.get(f"{_base(winpe_id)}/{profile_id}", headers=api_headers).status_code == 404


def test_deploy_schema_through_the_api(client, app, api_headers, schema_image) -> None:
    image_id, profile_id = schema_image
    url = f"{_base(image_id)}/{profile_id}"
    # Without a stored copy every partition deploys: Standard needs exactly one.
    whole = client.patch(url, headers=api_headers,
                         json={"modify_image_schema": True, "partition_method": "standard"})
    assert "exactly one partition" in whole.get_json()["errors"]["deploy_schema"]
    selection = {"disks": [{"index": 0, "partitions": [
        {"number": 2, "custom_size": {"value": 60, "unit": "%"}},
        {"number": 3, "custom_size": {"value": 50, "unit": "%"}}]}]}
    over = client.patch(url, headers=api_headers,
                        json={"modify_image_schema": True, "deploy_schema": selection})
    assert over.status_code == 422 and "over 100%" in over.get_json()["errors"]["deploy_schema"]
    selection["disks"][0]["partitions"][1]["custom_size"]["value"] = 40
    ok = client.patch(url, headers=api_headers,
                      json={"modify_image_schema": True, "deploy_schema": selection})
    assert ok.status_code == 200
    body = ok.get_json()
    assert body["deploy_schema"]["disks"][0]["partitions"][2]["custom_size"]["value"] == 40
    assert body["deploy_schema"]["disks"][0]["name"] == "sda"
    assert body["minimum_sizes_bytes"][0] is None  # % sizes: N/A
    with app.app_context():
        from app.extensions import db
        from app.models import ImageProfile

        stored = json.loads(db.session.get(ImageProfile, profile_id).minimum_sizes_json)
        assert stored["disks"][0] == {"index": 0, "minimum_bytes": None}
        assert stored["disks"][1]["minimum_bytes"] == body["minimum_sizes_bytes"][1]
    standard = client.patch(url, headers=api_headers, json={"partition_method": "standard"})
    assert "deploy_schema" in standard.get_json()["errors"]


def test_create_clone_delete(client, app, api_headers, linux_image) -> None:
    image_id, profile_id = linux_image
    created = client.post(_base(image_id), headers=api_headers,
                          json={"name": "fast", "compression_algorithm": "lz4",
                                "model_match": "T14", "model_match_criteria": "starts_with"})
    assert created.status_code == 201
    new = created.get_json()
    assert new["compression_level"] == 1 and new["model_match"] == "T14"
    bad = client.post(_base(image_id), headers=api_headers,
                      json={"name": "slow", "compression_algorithm": "gzip",
                            "compression_level": 0})
    assert bad.status_code == 422
    assert [p["name"] for p in client.get(_base(image_id), headers=api_headers).get_json()] == [
        "default", "fast"]
    duplicate = client.post(_base(image_id), headers=api_headers, json={"name": "fast"})
    assert duplicate.status_code == 422 and "name" in duplicate.get_json()["errors"]
    assert client.post(_base(image_id), headers=api_headers, json={}).status_code == 400
    clone = client.post(f"{_base(image_id)}/{new['id']}/clone", headers=api_headers)
    assert clone.status_code == 201
    copied = clone.get_json()
    assert copied["name"] == "fast_1" and copied["compression_algorithm"] == "lz4"
    assert copied["model_match"] == "" and copied["model_match_criteria"] == "disabled"
    for pid in (new["id"], copied["id"]):
        assert client.delete(f"{_base(image_id)}/{pid}", headers=api_headers).status_code == 204
    last = client.delete(f"{_base(image_id)}/{profile_id}", headers=api_headers)
    assert last.status_code == 409 and "last" in last.get_json()["error"]
    assert history_actions(app, image_id) == [
        "profile_create", "profile_update", "profile_clone", "profile_delete",
        "profile_delete"]


def test_modules_crud_and_assignments(client, api_headers, linux_image) -> None:
    image_id, profile_id = linux_image
    script = client.post("/api/v1/modules/scripts", headers=api_headers,
                         json={"name": "wipe-logs", "contents": "rm -f /var/log/*.gz\r\n"})
    assert script.status_code == 201 and script.get_json()["contents"].endswith("gz\n")
    script_id = script.get_json()["id"]
    bad_tag = client.post("/api/v1/modules/syspreps", headers=api_headers,
                          json={"name": "tz", "opening_tag": "TimeZone",
                                "closing_tag": "</TimeZone>"})
    assert bad_tag.status_code == 422 and "opening_tag" in bad_tag.get_json()["errors"]
    copy = client.post("/api/v1/modules/filecopies", headers=api_headers,
                       json={"name": "drivers", "destination_folder": "/drivers",
                             "unzip": True})
    copy_id = copy.get_json()["id"]
    patched = client.patch(f"/api/v1/modules/scripts/{script_id}", headers=api_headers,
                           json={"description": "cleanup"})
    assert patched.get_json()["description"] == "cleanup"
    assert client.get("/api/v1/modules/nope", headers=api_headers).status_code == 404
    assert [m["name"] for m in client.get("/api/v1/modules/scripts",
                                          headers=api_headers).get_json()] == ["wipe-logs"]
    url = f"{_base(image_id)}/{profile_id}"
    assigned = client.post(f"{url}/scripts", headers=api_headers,
                           json={"module_id": script_id, "run_when": "after_file_copy",
                                 "priority": 7})
    assert assigned.status_code == 201
    bad_part = client.post(f"{url}/filecopies", headers=api_headers,
                           json={"module_id": copy_id, "destination_partition": "sda1"})
    assert bad_part.status_code == 422
    fc = client.post(f"{url}/filecopies", headers=api_headers,
                     json={"module_id": copy_id, "destination_partition": "2"})
    assert fc.status_code == 201
    changed = client.patch(f"{url}/filecopies/{fc.get_json()['id']}", headers=api_headers,
                           json={"destination_partition": "vg0-root", "priority": 3})
    assert changed.get_json()["destination_partition"] == "vg0-root"
    profile = client.get(url, headers=api_headers).get_json()
    assert profile["scripts"][0]["run_when"] == "after_file_copy"
    assert profile["filecopies"][0]["priority"] == 3
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../boot/evil", "x")
    refused = client.post(f"/api/v1/modules/filecopies/{copy_id}/files", headers=api_headers,
                          data={"files": [(io.BytesIO(archive.getvalue()), "d.zip")]},
                          content_type="multipart/form-data")
    assert refused.status_code == 422 and "'..'" in refused.get_json()["error"]
    stored = client.post(f"/api/v1/modules/filecopies/{copy_id}/files", headers=api_headers,
                         data={"files": [(io.BytesIO(b"x"), "readme.txt")]},
                         content_type="multipart/form-data")
    assert stored.get_json()["files"] == [{"path": "readme.txt", "size_bytes": 1}]
    files_url = f"/api/v1/modules/filecopies/{copy_id}/files"
    assert client.delete(f"{files_url}/nope.txt", headers=api_headers).status_code == 404
    assert client.delete(f"{files_url}/readme.txt", headers=api_headers).status_code == 204
    assert client.get(f"/api/v1/modules/filecopies/{copy_id}",
                      headers=api_headers).get_json()["files"] == []
    removed = client.delete(f"{url}/scripts/{assigned.get_json()['id']}", headers=api_headers)
    assert removed.status_code == 204
    assert client.get(f"{url}/scripts", headers=api_headers).get_json() == []
    assert client.delete(f"/api/v1/modules/filecopies/{copy_id}",
                         headers=api_headers).status_code == 204
    assert client.get(f"{url}/filecopies", headers=api_headers).get_json() == []


def test_openapi_lists_profile_and_module_paths(client, api_headers) -> None:
    document = client.get("/api/v1/openapi.json", headers=api_headers).get_json()
    paths = document["paths"]
    for path in ("/images/{image_id}/profiles", "/images/{image_id}/profiles/{profile_id}",
                 "/images/{image_id}/profiles/{profile_id}/clone",
                 "/images/{image_id}/profiles/{profile_id}/scripts",
                 "/images/{image_id}/profiles/{profile_id}/filecopies/{assignment_id}",
                 "/modules/{kind}",
                 "/modules/{kind}/{module_id}"):
        assert path in paths
    options = document["components"]["schemas"]["ProfileOptions"]["properties"]
    assert options["compression_algorithm"]["enum"] == ["none", "gzip", "lz4", "zstd"]
    assert options["upload_schema_only"]["type"] == "boolean"


def test_assignment_request_schemas_are_the_fields_the_cleaner_takes(client, api_headers,
                                                                     linux_image) -> None:
    from app.profiles.assignments import ASSIGNMENT_FIELDS

    image_id, profile_id = linux_image
    paths = client.get("/api/v1/openapi.json", headers=api_headers).get_json()["paths"]
    url = f"{_base(image_id)}/{profile_id}"
    documented = "/images/{image_id}/profiles/{profile_id}"
    every = set().union(*ASSIGNMENT_FIELDS.values())
    modules = {"scripts": {"contents": "true"},
               "syspreps": {"opening_tag": "<TimeZone>", "closing_tag": "</TimeZone>"},
               "filecopies": {"destination_folder": "/drivers"}}
    for slug, fields in ASSIGNMENT_FIELDS.items():
        create = paths[f"{documented}/{slug}"]["post"]["requestBody"]["content"][
            "application/json"]["schema"]
        change = paths[f"{documented}/{slug}/{{assignment_id}}"]["patch"]["requestBody"][
            "content"]["application/json"]["schema"]
        assert set(create["properties"]) == {"module_id", *fields}
        assert create["required"] == ["module_id"]
        assert set(change["properties"]) == set(fields)
        module = client.post(f"/api/v1/modules/{slug}", headers=api_headers,
                             json={"name": f"m-{slug}", **modules[slug]}).get_json()
        # Every field of another kind is refused with the rule's message, none is saved.
        for other in sorted(every - set(fields)):
            refused = client.post(f"{url}/{slug}", headers=api_headers,
                                  json={"module_id": module["id"], other: "1"})
            assert refused.status_code == 422
            assert refused.get_json()["errors"] == {
                other: "is not an assignment field of this kind"}
        example = {"priority": 2.0, "run_when": "before_file_copy",
                   "destination_partition": " vg0-root "}
        assigned = client.post(f"{url}/{slug}", headers=api_headers,
                               json={"module_id": module["id"],
                                     **{k: example[k] for k in fields}})
        assert assigned.status_code == 201, assigned.get_json()
        assert assigned.get_json()["priority"] == 2
        if "destination_partition" in fields:
            assert assigned.get_json()["destination_partition"] == "vg0-root"
            too_long = client.patch(f"{url}/{slug}/{assigned.get_json()['id']}",
                                    headers=api_headers,
                                    json={"destination_partition": "vg0-" + "r" * 125})
            assert too_long.status_code == 422
            assert "partition number" in too_long.get_json()["errors"]["destination_partition"]
