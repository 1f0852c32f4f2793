"""One writer per run directory.

Two `condgan train --out SAME` at once would interleave their checkpoints and
logs. The run directory's `.lock` file is held with an OS lock (flock) while a
process trains there; the kernel drops it when the process dies however it
dies, so a lock left by a killed process is stale by construction and is
simply taken over. The file records the holder's PID and host for the message
the second writer gets.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ..errors import UserError

LOCK_NAME = ".lock"


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None
        self.took_over: dict | None = None  # what the stale lock said, when one was taken over
        self._made_folder = False

    def acquire(self) -> "RunLock":
        import fcntl

        folder = self.path.parent
        self._made_folder = not folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot create run directory {folder}: {e.strerror} (choose a writable --out)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}" if holder else "another process"
            raise UserError(f"{self.path.parent} is in use: {who} is training in it. Wait for it to finish, stop it, "
                            f"or choose another --out") from None
        previous = _read(fd)
        if previous and previous.get("pid") != os.getpid():
            self.took_over = previous  # its process is gone: the kernel released its lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None
        if self._made_folder and [p.name for p in self.path.parent.iterdir()] == [LOCK_NAME]:
            self.path.unlink(missing_ok=True)  # a run that failed before writing anything leaves no folder behind
            self.path.parent.rmdir()

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode()) if raw.strip() else {}
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
