"""An incoming copy on disk: files received into `parts/`, verified into `tree/`."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from app.receive.hashing import CHUNK_BYTES, FileHasher, hash_file
from app.receive.paths import PathRefused, clean_path
from app.receive.stream import ReceiveError, append_body, ensure_space
from app.storage import write_json_atomic

STATE = "state.json"
# Running hashes of part files between the bodies (segments, chunks) that extend them.
# Per process and lost on restart: then the stored part is hashed once from disk.
_RUNNING: dict[str, FileHasher] = {}
_RUNNING_LOCK = threading.Lock()


class Area:
    """One incoming copy: `parts/`, `tree/` and a JSON state file under one folder."""

    def __init__(self, root: Path, allow_top: tuple[str, ...] = ()) -> None:
        self.root = root
        self.parts = root / "parts"
        self.tree = root / "tree"
        self.allow_top = allow_top

    def path(self, relative: str) -> str:
        """Return a cleaned relative path or refuse it with 400."""
        try:
            return clean_path(relative, allow_top=self.allow_top)
        except PathRefused as exc:
            raise ReceiveError(400, str(exc)) from None

    def load_state(self) -> dict:
        """Read what this copy declared and received (empty when new)."""
        path = self.root / STATE
        state = json.loads(path.read_text()) if path.is_file() else {}
        state.setdefault("received", {})
        state.setdefault("partials", {})
        return state

    def save_state(self, state: dict) -> None:
        """Write the state file atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.root / STATE, state)

    def forget_running(self) -> None:
        """Drop the running hashes of this copy's part files."""
        prefix = str(self.parts) + os.sep
        with _RUNNING_LOCK:
            for key in [k for k in _RUNNING if k.startswith(prefix)]:
                del _RUNNING[key]

    def discard(self) -> None:
        """Remove the whole incoming copy."""
        self.forget_running()
        shutil.rmtree(self.root, ignore_errors=True)

    def receive(self, relative: str, read: Callable[[int], bytes], *, offset: int,
                length: int | None, size: int | None, final: bool,
                sha256: str | None = None, body_sha256: str | None = None) -> dict:
        """Stream one body (a whole file or bytes offset.. of it) in; verify when final.

        `size` and `sha256` are the whole file's when declared; `length` the body's.
        A finished file moves into `tree/` and is recorded with its SHA-256 and chunks.
        """
        relative = self.path(relative)
        part, key = self.parts / relative, str(self.parts / relative)
        state = self.load_state()
        declared = {"size_bytes": size, "sha256": sha256}
        with _RUNNING_LOCK:
            hasher = _RUNNING.pop(key, None)
        if offset < 0 or (size is not None and length is not None and offset + length > size):
            raise ReceiveError(400, f"{relative}: bytes {offset}..{offset + (length or 0)} go "
                                    f"past the declared size {size}")
        if offset == 0:
            part.unlink(missing_ok=True)
            hasher = None
            state["received"].pop(relative, None)
            state["partials"][relative] = declared
            self.save_state(state)
        else:
            have = part.stat().st_size if part.is_file() else 0
            if state["partials"].get(relative) != declared or have != offset:
                raise ReceiveError(409, f"{relative}: cannot continue at byte {offset}, "
                                        f"{have} bytes are stored", received_bytes=have)
        self.parts.mkdir(parents=True, exist_ok=True)
        ensure_space(self.parts, (size - offset) if size is not None else (length or 0),
                     relative)
        if hasher is None or hasher.size != offset:
            hasher = hash_file(part, CHUNK_BYTES, limit=offset) if offset else FileHasher()
        limit = size - offset if size is not None else None
        digest = append_body(part, offset, read, length=length, limit=limit, hasher=hasher,
                             durable=final, label=relative)
        if body_sha256 and digest != body_sha256:
            with open(part, "r+b") as handle:
                handle.truncate(offset)
            raise ReceiveError(400, f"{relative}: the body does not match its signed hash")
        if not final:
            with _RUNNING_LOCK:
                _RUNNING[key] = hasher
            return {"path": relative, "received_bytes": hasher.size, "complete": False}
        return self._finish(relative, part, hasher, declared, state)

    def _finish(self, relative: str, part: Path, hasher: FileHasher, declared: dict,
                state: dict) -> dict:
        """Check a complete part file against its declaration and move it into the tree."""
        whole, chunks = hasher.finish()
        problem = None
        if declared["size_bytes"] is not None and hasher.size != declared["size_bytes"]:
            problem = f"received {hasher.size} bytes, {declared['size_bytes']} were declared"
        elif declared["sha256"] and whole != declared["sha256"].lower():
            problem = f"SHA-256 mismatch on receipt (got {whole}); file discarded"
        if problem:
            part.unlink(missing_ok=True)
            state["partials"].pop(relative, None)
            self.save_state(state)
            raise ReceiveError(422, f"{relative}: {problem}")
        final = self.tree / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)
        state["partials"].pop(relative, None)
        state["received"][relative] = {
            "size_bytes": hasher.size, "sha256": whole, "chunk_bytes": CHUNK_BYTES,
            "chunks": chunks, "mtime_ns": final.stat().st_mtime_ns}
        self.save_state(state)
        return {"path": relative, "received_bytes": hasher.size, "complete": True,
                "size_bytes": hasher.size, "sha256": whole}

    def received(self, state: dict) -> dict[str, dict]:
        """Files of the tree that are still exactly as they were verified on receipt."""
        found = {}
        for path, info in state["received"].items():
            file = self.tree / path
            if file.is_file() and file.stat().st_mtime_ns == info.get("mtime_ns"):
                found[path] = info
        return found

    def prune(self, keep: set[str]) -> None:
        """Remove files of the tree not in `keep`, and folders left empty."""
        if not self.tree.is_dir():
            return
        for path in sorted(self.tree.rglob("*"), reverse=True):
            relative = path.relative_to(self.tree).as_posix()
            if path.is_file() and relative not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
