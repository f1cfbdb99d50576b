"""Bad bodies: a client that stops mid-body, bodies longer or shorter than declared, a full
disk. Each gives a clear error, leaves no staging behind and keeps the previous image."""

from __future__ import annotations

import http.client
import os
import socket
import time
from pathlib import Path

from app.extensions import db
from app.models import ApiToken, User
from tests.client.helpers import make_image, tiny_schema
from tests.conftest import make_app
from tests.receive.helpers import BASE, call, open_upload, upload_server

MIB = 1 << 20


def test_client_stopping_mid_body_aborts_the_upload(tmp_path):
    instance, token = upload_server(tmp_path / "server")
    instance.start()
    try:
        upload_id = open_upload(instance, token)
        sock = socket.create_connection(("127.0.0.1", instance.port))
        sock.sendall(f"PUT {BASE}/uploads/{upload_id}/files/hd0/p1.img HTTP/1.1\r\n"
                     f"Host: x\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Length: {8 * MIB}\r\n\r\n".encode() + os.urandom(MIB))
        time.sleep(0.5)
        sock.close()  # gone after 1 of 8 MiB
        staging = instance.storage / "staging" / upload_id
        deadline = time.monotonic() + 10
        while staging.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not staging.exists()
        status, answer = call(instance, token, "PUT", f"/uploads/{upload_id}/schema",
                              tiny_schema())
        assert status == 404  # the upload was aborted, not left half-done
    finally:
        instance.kill()


def test_body_longer_than_declared_is_refused_and_cleaned(tmp_path):
    instance, token = upload_server(tmp_path / "server")
    instance.start()
    try:
        upload_id = open_upload(instance, token)
        conn = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=30)
        conn.request("PUT", f"{BASE}/uploads/{upload_id}/files/hd0/p1.img",
                     body=os.urandom(300_000), headers={"Authorization": f"Bearer {token}",
                                                        "X-Castor-Size": "200000"})
        response = conn.getresponse()
        body = response.read()
        assert response.status == 400 and b"past the declared size" in body
        assert not (instance.storage / "staging" / upload_id).exists()
        # Without a Content-Length (chunked), the extra bytes are caught as they arrive.
        upload_id = open_upload(instance, token)
        conn = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=30)
        conn.request("PUT", f"{BASE}/uploads/{upload_id}/files/hd0/p1.img",
                     body=iter([os.urandom(150_000), os.urandom(150_000)]),
                     headers={"Authorization": f"Bearer {token}", "X-Castor-Size": "200000"},
                     encode_chunked=True)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 400 and b"longer than declared" in body
        assert not (instance.storage / "staging" / upload_id).exists()
    finally:
        instance.kill()


def test_body_shorter_than_declared_is_refused(app, client, api_headers):
    make_image(app)
    upload_id = client.post(f"{BASE}/uploads", json={"image": "lab"},
                            headers=api_headers).json["upload_id"]
    r = client.put(f"{BASE}/uploads/{upload_id}/files/hd0/p1.img", data=b"x" * 1000,
                   headers={**api_headers, "X-Castor-Size": "5000"})
    assert r.status_code == 422 and "declared" in r.json["error"]
    assert not (Path(app.config["STORAGE_PATH"]) / "staging" / upload_id).exists()


def test_full_disk_gives_507_before_and_while_receiving(tmp_path, tiny_store):
    app = make_app(tmp_path / "app", STORAGE_PATH=str(tiny_store))
    make_image(app)
    with app.app_context():
        user = User(username="admin", is_admin=True)
        user.set_password("correct horse")
        row, token = ApiToken.issue(user, "tests")
        db.session.add_all([user, row])
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def start() -> str:
        upload_id = client.post(f"{BASE}/uploads", json={"image": "lab"},
                                headers=headers).json["upload_id"]
        client.put(f"{BASE}/uploads/{upload_id}/schema", json=tiny_schema(), headers=headers)
        return upload_id

    # Declared bigger than the free space: refused before a byte is written.
    upload_id = start()
    r = client.put(f"{BASE}/uploads/{upload_id}/files/hd0/p1.img", data=os.urandom(MIB),
                   headers={**headers, "X-Castor-Size": str(64 * MIB)})
    assert r.status_code == 507 and "disk is full" in r.json["error"]
    assert not (tiny_store / "staging" / upload_id).exists()
    # Undeclared size, the disk fills while the body streams in.
    upload_id = start()
    r = client.put(f"{BASE}/uploads/{upload_id}/files/hd0/p1.img",
                   data=os.urandom(12 * MIB), headers=headers)
    assert r.status_code == 507 and "disk is full" in r.json["error"]
    assert not (tiny_store / "staging" / upload_id).exists()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
