"""Where a deploy's bytes come from: the server over HTTP (unicast) or a multicast session.

The deploy loop (`client.deploy.deploy_plans`) is the same for both; it asks its source for
the bytes of each manifest entry. `HttpSource` downloads them; `client.multicast` has a
source that receives partitions from udp-receiver and completes them over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from client.api import Api


class HttpSource:
    """Image files downloaded from the server (a broken connection resumes with Range)."""

    # A SHA-256 mismatch of a downloaded file means the stored file is damaged: no retry.
    retries_over_http = False

    def __init__(self, api: Api, image: str) -> None:
        self.api = api
        self.image = image

    def http(self, entry: dict, offset: int = 0) -> Iterator[bytes]:
        """Yield an image file's bytes from `offset` on, over HTTP.

        From the start, each chunk is checked against the manifest's chunk digests before it
        is handed on; a resumed tail (multicast completion) is checked by the whole-file hash.
        """
        path = f"/images/{self.image}/files/{entry['path']}"
        if offset == 0:
            yield from self.api.download_verified(path, entry)
        else:
            yield from self.api.download(path, offset=offset, size=entry.get("size_bytes"))

    def __call__(self, entry: dict) -> Iterator[bytes]:
        """Return an image file's bytes over HTTP (small reads: tables, image headers)."""
        return self.http(entry)

    def file_bytes(self, entry: dict) -> bytes:
        """Return a small image file (table dump, head sectors) completely."""
        return b"".join(self.http(entry))

    def partition(self, entry: dict) -> Iterable[bytes]:
        """Return the compressed stream of one partition's image file."""
        return self.http(entry)

    def restored(self, entry: dict, again_over_http: bool = False) -> None:
        """Record that a partition was restored and verified (nothing to do over HTTP)."""

    def close(self) -> None:
        """Finish with the source once every disk is done (nothing to do over HTTP)."""
