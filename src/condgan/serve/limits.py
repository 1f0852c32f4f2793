"""What one client can make `condgan serve` spend: the defaults, kept free of heavy imports for `--help`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Everything a client can make the server spend, bounded."""

    max_count: int = 256  # images per request (n × number of labels; a strip's steps × labels; search results)
    max_steps: int = 64  # images in one seed-to-seed strip (per label)
    max_upload_bytes: int = 4 * 2**20  # one decoded upload
    max_upload_pixels: int = 2048 * 2048  # checked from the header, before the pixels are decoded
    timeout: float = 30.0  # seconds a socket may stay silent (slow or idle clients are dropped)
    busy_timeout: float = 60.0  # seconds a request may wait for its model before a 503
    max_connections: int = 64  # open connections (threads); more get a 503 at once

    @property
    def max_body_bytes(self) -> int:
        """A JSON body with one upload (generate, interpolate, search)."""
        return self.body_bytes(1)

    def body_bytes(self, uploads: int) -> int:
        """A JSON body: its uploads in base64 (4/3 larger) plus room for the other keys."""
        return uploads * (self.max_upload_bytes * 4 // 3) + 64 * 1024

    def to_dict(self) -> dict:
        return {"max_count": self.max_count, "max_steps": self.max_steps, "max_upload_bytes": self.max_upload_bytes,
                "max_upload_pixels": self.max_upload_pixels, "max_body_bytes": self.max_body_bytes,
                "max_compare_body_bytes": self.body_bytes(2)}
