"""Boot qemu-system-x86_64 VMs (SeaBIOS or OVMF) on disk-image files and read their console."""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.vm.cache import CACHE

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# Console lines that mean a Debian boot is lost: stop waiting at once.
BOOT_FAILURES = ("Boot error", "Kernel panic", "No DEFAULT or UI configuration",
                 "No bootable device", "grub rescue>", "You are in emergency mode",
                 "Give root password", "error: no such device", "ALERT!  UUID=",
                 "Dropping to a shell", "Failed to start castor-boot-report")
_accel: str | None = None


@dataclass
class VmRun:
    """What one VM run left behind: its console, the marker line's fields, and how long."""

    console: str
    marker: str | None
    seconds: float
    exit_code: int | None
    fields: dict[str, str] = field(default_factory=dict)
    failure: str | None = None


def accel() -> str:
    """`kvm` when a guest really runs under KVM here, else `tcg` (probed once per boot)."""
    global _accel
    if _accel is None:
        _accel = os.environ.get("CASTOR_TEST_ACCEL") or _cached_probe()
    return _accel


def _cached_probe() -> str:
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    stamp = CACHE / "kvm-probe-v3"
    try:
        cached_boot, answer = stamp.read_text().split()
        if cached_boot == boot_id:
            return answer
    except (OSError, ValueError):
        pass
    answer = "kvm" if _kvm_runs_guest() else "tcg"
    CACHE.mkdir(parents=True, exist_ok=True)
    stamp.write_text(f"{boot_id} {answer}\n")
    return answer


def probe_kernel() -> Path:
    """The Debian kernel of the cached root, extracted once: what the real VMs boot."""
    kernel = CACHE / "probe-vmlinuz"
    if kernel.exists():
        return kernel
    from tests.vm.root import root_tarball

    with tempfile.TemporaryDirectory(prefix="castor-kvm-probe-") as tmp:
        subprocess.run(["tar", "-I", "zstd", "-xf", str(root_tarball()), "-C", tmp,
                        "--wildcards", "./boot/vmlinuz-*"], check=True, capture_output=True)
        found = sorted(Path(tmp, "boot").glob("vmlinuz-*"))
        partial = kernel.with_suffix(".partial")
        shutil.copyfile(found[-1], partial)
        partial.rename(kernel)
    return kernel


def _kvm_runs_guest() -> bool:
    """Boot the Debian kernel under KVM with the CPU the real VMs get (`-cpu host`).

    Nested guests here hang, die with "KVM internal error", or abort at start when the host
    CPU's MSRs cannot be set ("failed to set MSR 0x10a"). Some run real-mode code but hang as
    soon as Linux starts (nothing on the console), so the probe boots the real kernel with no
    root: under a working KVM it reaches its "Kernel panic" line in a second or two.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    kernel = probe_kernel()
    with tempfile.TemporaryDirectory(prefix="castor-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        argv = [QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults",
                "-display", "none", "-monitor", "none", "-serial", f"file:{console}", "-no-reboot",
                "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if console.exists() and "Kernel panic" in console.read_text(errors="replace"):
                    return True
                time.sleep(0.2)
            return console.exists() and "Kernel panic" in console.read_text(errors="replace")
        finally:
            proc.kill()
            proc.wait()


def qemu_argv(disks: list[Path], firmware: str, console: Path, vars_file: Path | None,
              memory_mib: int, extra_args: list[str]) -> list[str]:
    """The qemu command line of one VM."""
    argv = [QEMU, "-accel", accel(), "-m", str(memory_mib), "-smp", "1", "-nodefaults",
            "-display", "none", "-monitor", "none", "-serial", f"file:{console}",
            "-no-reboot"]
    if accel() == "kvm":
        argv += ["-cpu", "host"]
    if firmware == "bios":
        # SeaBIOS copies text-mode output (boot sectors' "Boot error") to COM1 with this item.
        sercon = console.with_suffix(".sercon")
        sercon.write_bytes(struct.pack("<H", 0x3F8))
        argv += ["-fw_cfg", f"name=etc/sercon-port,file={sercon}"]
    elif firmware == "uefi":
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}"]
    else:
        raise ValueError(f"unknown firmware {firmware!r}")
    for disk in disks:
        argv += ["-drive", f"file={disk},format=raw,if=virtio,cache=unsafe"]
    return argv + list(extra_args)


def boot_vm(disks: list[Path], firmware: str = "bios", *, console: Path,
            marker: str = "CASTOR-BOOT", timeout: float = 300, memory_mib: int = 768,
            extra_args: list[str] | None = None, vars_file: Path | None = None,
            wait_exit: float = 60, fail_on: tuple[str, ...] = ()) -> VmRun:
    """Boot a VM until its console shows the marker line (then let it power off) or timeout.

    A console line containing one of `fail_on` ends the run early as a failure.
    """
    console.parent.mkdir(parents=True, exist_ok=True)
    console.unlink(missing_ok=True)
    own_vars = None
    if firmware == "uefi" and vars_file is None:
        own_vars = vars_file = console.with_suffix(".vars.fd")
        shutil.copyfile(OVMF_VARS, vars_file)
    argv = qemu_argv(disks, firmware, console, vars_file, memory_mib, extra_args or [])
    errors = console.with_suffix(".qemu.log")
    started = time.monotonic()
    with open(errors, "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    try:
        line, failure = _wait_marker(proc, console, marker, fail_on, started + timeout)
        seconds = time.monotonic() - started
        if line is not None:
            # The guest powers off after the marker: wait so its filesystems are unmounted.
            try:
                proc.wait(timeout=wait_exit)
            except subprocess.TimeoutExpired:
                pass
    finally:
        _kill(proc)
        if own_vars is not None:
            own_vars.unlink(missing_ok=True)
    text = console.read_text(errors="replace") if console.exists() else ""
    text += errors.read_text(errors="replace")
    return VmRun(text, line, seconds, proc.returncode, parse_marker(line or "", marker),
                 failure)


def _wait_marker(proc: subprocess.Popen, console: Path, marker: str, fail_on: tuple[str, ...],
                 deadline: float) -> tuple[str | None, str | None]:
    """Poll the console for the marker line (or a failure) until the VM exits or time is up."""
    # Only a whole line counts: the console file may end in the middle of the marker line.
    pattern = re.compile(rf"^.*{re.escape(marker)} [^\n]*\n", re.M)
    while True:
        exited = proc.poll() is not None
        text = console.read_text(errors="replace") if console.exists() else ""
        found = pattern.search(text)
        if found:
            return found.group(0).strip(), None
        failure = next((f for f in fail_on if f in text), None)
        if failure:
            time.sleep(2)  # let the console show what follows the failure
            return None, failure
        if exited:
            return None, f"the VM exited ({proc.returncode}) before the marker"
        if time.monotonic() > deadline:
            return None, "timeout"
        time.sleep(0.5)


def _kill(proc: subprocess.Popen) -> None:
    """Kill the VM's process group, whatever state it is in."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def parse_marker(line: str, marker: str = "CASTOR-BOOT") -> dict[str, str]:
    """The key=value fields of a marker line."""
    _, _, rest = line.partition(marker)
    return dict(item.split("=", 1) for item in rest.split() if "=" in item)
