"""A VM whose serial console is a socket: read what it shows and type keys into it.

The shared runner (tests/vm/qemu.py) writes the console to a file; menus on the console need
input too, so this one takes the same qemu command line and puts the serial port on a unix
socket instead (its output still logged to the console file).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.vm.qemu import qemu_argv

ESCAPES = re.compile(rb"\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[=>78])")
DOWN, ENTER = "\x1b[B", "\r"


class SerialVm:
    """One running VM with its console on a socket."""

    def __init__(self, disks: list[Path], firmware: str, console: Path, *,
                 memory_mib: int = 1536, extra_args: list[str] | None = None) -> None:
        self.console = console
        self.sock_path = console.with_suffix(".sock")
        self.sock_path.unlink(missing_ok=True)
        argv = qemu_argv(disks, firmware, console, None, memory_mib, extra_args or [])
        at = argv.index("-serial")
        argv[at:at + 2] = ["-chardev", f"socket,id=con0,path={self.sock_path},server=on,"
                           f"wait=off,logfile={console}", "-serial", "chardev:con0"]
        self.errors = console.with_suffix(".qemu.log")
        with open(self.errors, "w") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        self.raw = bytearray()
        self._lock = threading.Lock()
        self.sock = self._connect()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._seen = 0

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.sock_path))
                return sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("qemu's serial socket never appeared: "
                                       + self.errors.read_text()) from None
                time.sleep(0.2)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.raw += data

    def text(self) -> str:
        """The console so far, escape sequences removed."""
        with self._lock:
            data = bytes(self.raw)
        return ESCAPES.sub(b"", data).decode(errors="replace")

    def expect(self, needle: str, timeout: float = 300) -> None:
        """Wait until `needle` shows on the console after what was already expected."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            found = text.find(needle, self._seen)
            if found >= 0:
                self._seen = found + len(needle)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"{needle!r} never showed on the console; last output:\n"
                             + self.text()[-3000:])

    def send(self, keys: str, pause: float = 0.3) -> None:
        """Type keys into the console, one at a time as a person would."""
        for key in re.findall(r"\x1b\[[A-D]|.", keys, re.S):
            self.sock.sendall(key.encode())
            time.sleep(pause)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for the VM to end (its own power off); None if it did not."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Stop the VM whatever it is doing."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.sock.close()
