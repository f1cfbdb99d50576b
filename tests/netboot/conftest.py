"""Fixtures of the network boot tests: the built environment, the lab network, VMs on it."""

from __future__ import annotations

import os
import shutil

import pytest

from app.extensions import db as _db
from app.models import ApiToken, User
from tests.conftest import make_app, needs_root
from tests.netboot.bootfiles import boot_files
from tests.netboot.lab import Lab

# The shared VM harness (tests/vm, qemu runner and OS disks) comes with the boot matrix.
qemu = pytest.importorskip("tests.vm.qemu", reason="needs the shared VM harness in tests/vm")


def pytest_collection_modifyitems(items):
    """Every netboot test needs root, namespaces, qemu and dnsmasq."""
    for item in items:
        if "tests/netboot/" in str(item.fspath):
            item.add_marker(needs_root)


@pytest.fixture(scope="session")
def environment():
    """The imaging environment's boot files (built once per set of inputs, then cached)."""
    if os.geteuid() != 0 or not shutil.which("debootstrap") or not shutil.which("dnsmasq"):
        pytest.skip("needs root, debootstrap and dnsmasq")
    return boot_files()


@pytest.fixture(scope="module")
def app(tmp_path_factory, environment):
    """A Castor app whose /boot/files/ serves the built environment."""
    tmp = tmp_path_factory.mktemp("netboot")
    app = make_app(tmp, BOOT_FILES_PATH=str(environment), BOOT_DEFAULT_ARGS="console=ttyS0")
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture(scope="module")
def api(app):
    """A test client and the headers of an admin API token."""
    with app.app_context():
        user = User(username="admin", is_admin=True)
        user.set_password("correct horse")
        _db.session.add(user)
        _db.session.flush()
        row, clear = ApiToken.issue(user, "netboot")
        _db.session.add(row)
        _db.session.commit()
    return app.test_client(), {"Authorization": f"Bearer {clear}"}


@pytest.fixture(scope="module")
def lab(app, tmp_path_factory):
    """The lab network with Castor on it; qemu runs inside its namespace."""
    lab = Lab(tmp_path_factory.mktemp("lab"), dict(app.config)).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(qemu, "QEMU", str(lab.qemu_wrapper()))
        try:
            yield lab
        finally:
            lab.stop()
