"""Deploy customisation: computer name, sysprep edits, profile scripts and file copies."""

from __future__ import annotations

import codecs
import ctypes
import ctypes.util
import logging
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from client.mount import FAT_FILESYSTEMS, mounted
from client.run import ClientError, CommandError, run, run_ok, tail

log = logging.getLogger("castor.client")

UNATTEND_PATHS = (
    "Windows/Panther/unattend.xml",
    "Windows/Panther/Unattend/unattend.xml",
    "Windows/System32/sysprep/unattend.xml",
)
COMPUTER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
COMPUTER_NAME_TAG = re.compile(r"<ComputerName>[^<]*</ComputerName>|<ComputerName\s*/>", re.I)
SCRIPT_TIMEOUT = 3600
WINDOWS_NAME_LIMIT = 15  # NetBIOS names; Windows setup fails on longer ones
SYSTEM_HIVE = "Windows/System32/config/SYSTEM"
HIVEX_OPEN_WRITE = 4
REG_SZ = 1


def find_case_insensitive(root: Path, relative: str) -> list[Path]:
    """Find root/relative whatever the letter case of each part (NTFS keeps Windows' casing)."""
    current = [root]
    for part in PurePosixPath(relative).parts:
        current = sorted(child for folder in current
                         if folder.is_dir() and not folder.is_symlink()
                         for child in folder.iterdir() if child.name.lower() == part.lower())
    return [path for path in current if path.is_file() and not path.is_symlink()]


def unattend_files(root: Path) -> list[Path]:
    """List the unattend.xml files Windows setup reads, as found in a mounted volume."""
    return [path for relative in UNATTEND_PATHS for path in find_case_insensitive(root, relative)]


def read_text(path: Path) -> tuple[str, str]:
    """Read a text file that may be UTF-16 (Windows tools write it) and return its encoding."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), "utf-16"
    if raw.startswith(codecs.BOM_UTF8):
        return raw.decode("utf-8-sig"), "utf-8-sig"
    return raw.decode("utf-8", errors="surrogateescape"), "utf-8"


def write_text(path: Path, text: str, encoding: str) -> None:
    """Write text back in the encoding it was read in."""
    errors = "surrogateescape" if encoding == "utf-8" else "strict"
    path.write_bytes(text.encode(encoding, errors=errors))


def set_computer_name(root: Path, name: str) -> list[str]:
    """Set the computer name in a mounted system (unattend.xml or /etc/hostname); list files."""
    if not COMPUTER_NAME.match(name):
        raise ClientError(f"invalid computer name {name!r}: use letters, digits and '-'")
    changed = []
    unattend = unattend_files(root)
    hives = find_case_insensitive(root, SYSTEM_HIVE)
    if (unattend or hives) and len(name) > WINDOWS_NAME_LIMIT:
        raise ClientError(f"computer name {name!r} is longer than Windows allows "
                          f"({WINDOWS_NAME_LIMIT} characters)")
    for path in unattend:
        text, encoding = read_text(path)
        new = COMPUTER_NAME_TAG.sub(f"<ComputerName>{name}</ComputerName>", text)
        if new != text:
            write_text(path, new, encoding)
            changed.append(str(path))
    # A sysprepped image takes its name from the answer file; one that was not keeps the name
    # in its registry (and often an old Panther/unattend.xml nobody reads): set both.
    for hive in hives:
        try:
            if set_registry_computer_name(hive, name):
                changed.append(str(hive))
        except ClientError as exc:
            if not changed:
                raise
            log.warning("computer name set in the answer file only: %s", exc)
    etc = root / "etc"
    if not etc.is_dir() or etc.is_symlink():
        return changed
    # A symlink in here points into the client's own filesystem once followed: leave it.
    hostname, hosts = etc / "hostname", etc / "hosts"
    if not hostname.is_symlink() and (hostname.exists() or (etc / "os-release").exists()):
        hostname.write_text(name + "\n", encoding="utf-8")
        changed.append(str(hostname))
    if hosts.is_file() and not hosts.is_symlink() and _set_hosts_name(hosts, name):
        changed.append(str(hosts))
    return changed


class _SetValue(ctypes.Structure):
    """libhivex's hive_set_value: one value to write into a key."""

    _fields_ = [("key", ctypes.c_char_p), ("t", ctypes.c_int), ("len", ctypes.c_size_t),
                ("value", ctypes.c_char_p)]


def _libhivex() -> ctypes.CDLL:
    """Load libhivex (the registry hive library libguestfs uses) with its signatures."""
    path = ctypes.util.find_library("hivex") or "libhivex.so.0"
    try:
        lib = ctypes.CDLL(path, use_errno=True)
    except OSError as exc:
        raise ClientError("cannot edit the Windows registry: libhivex is not installed") from exc
    node = ctypes.c_size_t
    lib.hivex_open.restype = ctypes.c_void_p
    lib.hivex_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.hivex_root.restype = node
    lib.hivex_root.argtypes = [ctypes.c_void_p]
    lib.hivex_node_get_child.restype = node
    lib.hivex_node_get_child.argtypes = [ctypes.c_void_p, node, ctypes.c_char_p]
    lib.hivex_node_get_value.restype = node
    lib.hivex_node_get_value.argtypes = [ctypes.c_void_p, node, ctypes.c_char_p]
    lib.hivex_value_dword.restype = ctypes.c_int32
    lib.hivex_value_dword.argtypes = [ctypes.c_void_p, node]
    lib.hivex_node_set_value.argtypes = [ctypes.c_void_p, node, ctypes.POINTER(_SetValue),
                                         ctypes.c_int]
    lib.hivex_commit.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.hivex_close.argtypes = [ctypes.c_void_p]
    return lib


def _hive_key(lib: ctypes.CDLL, hive: int, path: str) -> int:
    """Return the node of a backslash-separated key path, or 0 when a part is missing."""
    node = lib.hivex_root(hive)
    for part in path.split("\\"):
        node = lib.hivex_node_get_child(hive, node, part.encode()) if node else 0
    return node


def set_registry_computer_name(system_hive: Path, name: str) -> bool:
    """Write the computer name into a Windows SYSTEM hive; tell whether anything was set."""
    lib = _libhivex()
    hive = lib.hivex_open(str(system_hive).encode(), HIVEX_OPEN_WRITE)
    if not hive:
        raise ClientError(f"cannot open the registry hive {system_hive}: "
                          f"{os.strerror(ctypes.get_errno())}")
    try:
        select = _hive_key(lib, hive, "Select")
        current = lib.hivex_node_get_value(hive, select, b"Current") if select else 0
        control_set = f"ControlSet{lib.hivex_value_dword(hive, current) if current else 1:03d}"
        # Only values that exist change: the hive of a real Windows has them all, and adding
        # keys Windows did not make is not ours to do.
        wanted = [("Control\\ComputerName\\ComputerName", "ComputerName", name.upper()),
                  ("Services\\Tcpip\\Parameters", "Hostname", name),
                  ("Services\\Tcpip\\Parameters", "NV Hostname", name)]
        changed = False
        for key, value_name, text in wanted:
            node = _hive_key(lib, hive, f"{control_set}\\{key}")
            if not node or not lib.hivex_node_get_value(hive, node, value_name.encode()):
                continue
            data = (text + "\0").encode("utf-16-le")
            value = _SetValue(value_name.encode(), REG_SZ, len(data), data)
            if lib.hivex_node_set_value(hive, node, ctypes.byref(value), 0) != 0:
                raise ClientError(f"cannot set {key}\\{value_name} in {system_hive}")
            changed = True
        if changed and lib.hivex_commit(hive, None, 0) != 0:
            raise ClientError(f"cannot write the registry hive {system_hive}")
        return changed
    finally:
        lib.hivex_close(hive)


def _set_hosts_name(hosts: Path, name: str) -> bool:
    """Point the 127.0.1.1 line of /etc/hosts at name (Debian's convention); tell if changed."""
    text = hosts.read_text(encoding="utf-8", errors="surrogateescape")
    line = f"127.0.1.1\t{name}"
    if re.search(r"^127\.0\.1\.1\s.*$", text, re.MULTILINE):
        new = re.sub(r"^127\.0\.1\.1\s.*$", line, text, count=1, flags=re.MULTILINE)
    else:
        new = text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    if new == text:
        return False
    hosts.write_text(new, encoding="utf-8", errors="surrogateescape")
    return True


def by_priority(items: list[dict]) -> list[dict]:
    """Sort modules by priority, lower first, keeping the given order between equals."""
    return sorted(items, key=lambda item: int(item.get("priority") or 0))


def apply_sysprep(root: Path, modules: list[dict]) -> list[str]:
    """Replace the text between each module's tags in the unattend files, lower priority first."""
    changed = []
    for path in unattend_files(root):
        text, encoding = read_text(path)
        original = text
        for module in by_priority(modules):
            opening, closing = module["opening_tag"], module["closing_tag"]
            if not opening or not closing:
                continue
            pattern = re.compile(re.escape(opening) + r"(.*?)" + re.escape(closing), re.S)
            contents = module.get("contents") or ""
            text, count = pattern.subn(lambda _m, o=opening, c=closing, t=contents: o + t + c,
                                       text)
            if not count:
                log.info("sysprep module %s: %s not found in %s", module.get("name", "?"),
                         opening, path)
        if text != original:
            write_text(path, text, encoding)
            changed.append(str(path))
    return changed


def script_env(*, disk: str = "", partition: str | int = "", mount_point: str | Path = "",
               image: str = "", computer_name: str = "") -> dict[str, str]:
    """Build the CASTOR_* variables a profile script sees."""
    return {"CASTOR_DISK": str(disk), "CASTOR_PARTITION": str(partition),
            "CASTOR_MOUNT_POINT": str(mount_point), "CASTOR_IMAGE": image,
            "CASTOR_COMPUTER_NAME": computer_name}


def run_scripts(scripts: list[dict], run_when: str, env: dict, cwd: Path | None = None) -> None:
    """Run the scripts assigned to run_when with bash, lower priority first; stop on failure."""
    chosen = by_priority([s for s in scripts if s.get("run_when") == run_when])
    for script in chosen:
        name = script.get("name") or "script"
        # Scripts edited in a browser arrive with CRLF line ends, which bash does not accept.
        body = (script.get("contents") or "").replace("\r\n", "\n")
        full_env = {**os.environ, **{k: str(v) for k, v in env.items()},
                    "CASTOR_RUN_WHEN": run_when, "CASTOR_SCRIPT": name}
        with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="castor-script-",
                                         encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            log.info("running script %s (%s)", name, run_when)
            try:
                # Nobody is at the keyboard of an imaging client: stdin is empty.
                output = run(["bash", handle.name], env=full_env, input="",
                             cwd=str(cwd) if cwd else None, timeout=SCRIPT_TIMEOUT)
            except CommandError as exc:
                raise ClientError(f"script {name!r} ({run_when}) failed: "
                                  f"exit {exc.returncode}: {exc.stderr_tail}") from exc
        if output.strip():
            log.info("script %s said: %s", name, tail(output, 20))


def clean_destination(folder: str) -> PurePosixPath:
    """Turn a destination like 'C:\\Windows\\Setup' or '/opt/x' into a safe relative path."""
    text = re.sub(r"^[A-Za-z]:", "", folder.replace("\\", "/"))
    parts = [p for p in PurePosixPath(text).parts if p not in ("/", ".", "")]
    if ".." in parts:
        raise ClientError(f"file copy destination {folder!r} may not contain '..'")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def existing_case(root: Path, relative: PurePosixPath) -> Path:
    """Follow relative under root reusing folders that exist in another letter case."""
    # Windows sees "Windows" and "WINDOWS" as one folder; ntfs-3g would happily make both.
    current = root
    for part in relative.parts:
        if part == ".":
            continue
        candidates = sorted(c for c in current.iterdir() if c.name.lower() == part.lower()
                            and c.is_dir()) if current.is_dir() else []
        current = candidates[0] if candidates else current / part
    return current


def _stage(source: Path, staging: Path) -> None:
    """Copy source into staging, unpacking every .zip file in place of the archive."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        relative = path.relative_to(source.parent if source.is_file() else source)
        if path.suffix.lower() == ".zip":
            target = staging / relative.parent
            target.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member.startswith("/") or ".." in PurePosixPath(member).parts:
                        raise ClientError(f"{path.name}: unsafe path {member!r} in archive")
                archive.extractall(target)
        else:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, staging / relative)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a file into target, or a folder's contents merged into target."""
    target.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copyfile(source, target / source.name)
    else:
        # copyfile, not copy2: NTFS and FAT cannot keep Unix modes, and failing on that helps
        # nobody.
        shutil.copytree(source, target, dirs_exist_ok=True, copy_function=shutil.copyfile)


def _mtools_copy(dev: str, source: Path, destination: PurePosixPath) -> None:
    """Copy a file or a folder's contents into a FAT volume with mtools (no mount needed)."""
    folder = ""
    for part in destination.parts:
        if part == ".":
            continue
        folder += "/" + part
        # mmd fails when the folder exists already, which is fine.
        run_ok(["mmd", "-i", dev, "::" + folder], input="")
    items = [source] if source.is_file() else sorted(source.iterdir())
    if items:
        # An empty stdin: mtools asks on a name clash it cannot settle, which would hang.
        run(["mcopy", "-s", "-o", "-m", "-i", dev, *map(str, items), "::" + folder + "/"],
            input="")


def copy_files(dev: str, fs_type: str, source: Path, destination_folder: str,
               unzip: bool) -> None:
    """Copy a file, or a folder's contents, into destination_folder of the partition dev."""
    source = Path(source)
    if not source.exists():
        raise ClientError(f"file copy source {source} does not exist")
    destination = clean_destination(destination_folder)
    with tempfile.TemporaryDirectory(prefix="castor-copy-") as tmp:
        if unzip:
            staging = Path(tmp)
            _stage(source, staging)
            source = staging
        if fs_type in FAT_FILESYSTEMS:
            _mtools_copy(dev, source, destination)
            return
        with mounted(dev, fs_type) as root:
            target = existing_case(root, destination) if fs_type == "ntfs" else root / destination
            # An absolute symlink inside the volume would lead out of it, into the client.
            if not target.resolve().is_relative_to(root.resolve()):
                raise ClientError(f"file copy destination {destination_folder!r} leads outside "
                                  "the partition")
            _copy_tree(source, target)
