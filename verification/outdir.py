"""The output folder of a run: an exclusive lock, atomic writes, and the state of an earlier run found there.

Runner-independent (the process pool of ``verify.py`` uses it; so can any other runner): the one process that
holds the lock is the only writer, and every file it writes appears whole or not at all.

* ``OutputLock(folder)``: ``flock`` on ``folder/.srflow.lock`` (released by the kernel however the holder ends,
  so a killed run never leaves a stale lock); the holder's pid and start time are written into the file so that
  a refused run can say who holds it. A second lock on the same folder raises ``FolderBusy``.
* ``atomic_write(path, data)``: write a temporary file in the same folder, ``fsync``, then ``os.replace``.
* ``Reserve(folder)``: a file of zeros kept beside the report, as large as the report; when a write fails
  (``OutputWriteFailed``: a full disk, a quota), deleting it frees the room for the last report, which then
  keeps every finished result and is marked interrupted instead of staying "running".
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover -- Windows: an O_EXCL lock file (a killed run then leaves it behind)
    fcntl = None

LOCK_NAME = ".srflow.lock"


#: exit statuses of ``srflow verify`` and ``srflow sweep`` (README.md, Commands): all passed; a check failed; a usage
#: or input error (as argparse's own errors); an internal error (a check raised, a worker crashed); interrupted
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(SystemExit):
    """Bad arguments or input: the message names the argument; exit status 2 (as argparse's own errors)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = EXIT_USAGE


def writable(out: Path, what: str) -> Path:
    """Create ``out`` and prove it writable, or exit with a message naming ``what`` and the reason."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".srflow-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{what}: cannot write to {out}: {exc.strerror or exc}")
    return out


def fresh_folder(prefix: str, what: str) -> Path:
    """A new ./srflow-out/<prefix><timestamp>, claimed with an exclusive mkdir (two runs started in the same second
    get <name>-1, <name>-2, ...); an unwritable location exits with a message naming ``what``."""
    base = Path("srflow-out") / time.strftime(f"{prefix}%Y%m%d-%H%M%S")
    out, k = base, 1
    while True:
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            out.mkdir()
            return out
        except FileExistsError:
            out, k = base.with_name(f"{base.name}-{k}"), k + 1
        except OSError as exc:
            raise UsageError(f"{what}: cannot write to {out}: {exc.strerror or exc}")


class OutputWriteFailed(Exception):
    """Writing the output folder failed (no space left, quota, I/O error): ``error`` is the OSError. It stops a run
    (the next results could not be kept either); the message names the folder and the reason."""

    def __init__(self, folder: Path, error: OSError):
        super().__init__(f"cannot write to {folder}: {error.strerror or error}")
        self.folder, self.error = Path(folder), error


RESERVE_NAME = ".srflow-reserve"
#: the reserve never shrinks below this (report.md and report.json of a few checks)
RESERVE_MIN = 64 * 1024


class Reserve:
    """``folder/.srflow-reserve``: zeros that hold disk space for the last write of a report (see the module
    docstring). ``ensure(n)`` grows it to at least ``n`` bytes (an OSError when the disk is already full);
    ``release()`` deletes it."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / RESERVE_NAME
        self.size = self.path.stat().st_size if self.path.exists() else 0  # left by a killed run: reused

    def ensure(self, nbytes: int) -> None:
        nbytes = max(int(nbytes), RESERVE_MIN)
        if nbytes <= self.size:
            return
        with open(self.path, "ab") as fh:
            fh.write(b"\0" * (nbytes - self.size))  # written, not sparse: the blocks are really taken
            fh.flush()
            os.fsync(fh.fileno())
        self.size = nbytes

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self.size = 0


class FolderBusy(RuntimeError):
    """Another process holds the lock on the output folder; the message names it."""


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class OutputLock:
    """An exclusive, non-blocking lock on ``folder`` (created if needed). Use as a context manager or call
    ``acquire``/``release``."""

    #: locks held by this process, closed in forked children (see ``close_inherited``)
    _held: list["OutputLock"] = []

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                raise FolderBusy(self._busy_message()) from None
        else:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise FolderBusy(self._busy_message()) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self._fd = fd
        OutputLock._held.append(self)
        return self

    def _busy_message(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            who = f"process {holder['pid']}, since {holder['since']}"
        except (OSError, ValueError, KeyError):
            who = "another process"
        return f"{self.folder} is in use by another srflow run ({who})"

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        OutputLock._held.remove(self)
        if fcntl is None:  # pragma: no cover
            os.close(fd)
            self.path.unlink(missing_ok=True)
            return
        os.close(fd)

    @classmethod
    def close_inherited(cls) -> None:
        """In a forked child: drop the inherited lock descriptors (the parent keeps its lock)."""
        for lock in cls._held:
            if lock._fd is not None:
                try:
                    os.close(lock._fd)
                except OSError:
                    pass
                lock._fd = None
        cls._held = []

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
