"""Build a small sysfs-shaped folder (the files task mode reads) for the client tests."""

from __future__ import annotations

from pathlib import Path


def make_sysfs(root: Path, *, mac: str = "52:54:00:12:34:56", model: str = "OptiPlex 7090",
               serial: str = "To Be Filled By O.E.M.", board_serial: str = "BSN-42",
               uuid: str | None = "4C4C4544-0042-3510-8051-B4C04F4E3732") -> Path:
    """Write net and dmi attributes like the kernel exposes them; return the root."""
    net = root / "class" / "net"
    for name, address, state, hardware in (
        ("lo", "00:00:00:00:00:00", "unknown", False),
        ("docker0", "02:42:ac:11:00:01", "up", False),
        ("eth1", "52:54:00:99:99:99", "down", True),
        ("eth0", mac, "up", True),
    ):
        (net / name).mkdir(parents=True)
        (net / name / "address").write_text(address + "\n")
        (net / name / "operstate").write_text(state + "\n")
        if hardware:
            (net / name / "device").mkdir()
    dmi = root / "class" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "product_name").write_text(model + "\n")
    (dmi / "product_serial").write_text(serial + "\n")
    (dmi / "board_serial").write_text(board_serial + "\n")
    if uuid is not None:
        (dmi / "product_uuid").write_text(uuid + "\n")
    return root
