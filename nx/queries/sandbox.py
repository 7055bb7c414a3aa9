"""Where DuckDB may write while nx reads: a private spill directory, and (on Linux) nowhere else.

``spill_config()`` is the configuration of every connection nx opens for reading: DuckDB's
temporary files go to a directory of their own inside a private one made for this process
(``tempfile.mkdtemp``: mode 0700 under ``$TMPDIR``, removed at exit), never to DuckDB's default
``./.tmp`` (relative to the current directory, where a symlink named ``.tmp`` would send the
spill anywhere), and at most ``spill_limit()`` of them. The private directory of a process that
was killed is removed by the next nx that starts.

``confined(work)`` runs ``work()`` in a thread of its own that the kernel (Linux Landlock, 5.13
and later) stops from creating, changing or deleting any file outside that private directory;
threads DuckDB starts from it (its workers: a connection's threads are started by the thread
that opens it) inherit the restriction, other threads of the process are untouched. So
SQL run there cannot write a file whatever DuckDB admits. Where Landlock is missing (another
system, an older kernel, a container that filters the call), ``work()`` runs unconfined and
the guards of ``readonly.py`` are what hold; ``confinement()`` says which.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import struct
import sys
import tempfile
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

PREFIX = "nx-duckdb-"
SPILL_CAP = 16 * 2**30  # and at most half the free space where the spill goes

_lock = threading.Lock()
_private: str | None = None

# -- the private directory --------------------------------------------------------------


def private_directory() -> str:
    """This process's private directory (made on first use, removed at exit)."""
    global _private
    with _lock:
        if _private is None or not os.path.isdir(_private):
            _remove_stale(tempfile.gettempdir())
            _private = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")  # mode 0700
            atexit.register(shutil.rmtree, _private, True)
        return _private


def _remove_stale(parent: str) -> None:
    """Private directories of nx processes that are gone (killed before their exit handler ran)."""
    try:
        names = [n for n in os.listdir(parent) if n.startswith(PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(PREFIX):].split("-", 1)[0]
        path = os.path.join(parent, name)
        try:
            if not pid.isdigit() or os.lstat(path).st_uid != os.getuid() or _alive(int(pid)):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def spill_limit(directory: str) -> int:
    """Bytes DuckDB may spill: half the free space of the directory's disk, at most SPILL_CAP."""
    try:
        return max(min(SPILL_CAP, shutil.disk_usage(directory).free // 2), 2**20)
    except OSError:
        return SPILL_CAP


def spill_config() -> dict[str, str]:
    """``duckdb.connect(config=...)`` entries: a fresh spill directory of its own inside the private
    directory (DuckDB makes it when it first spills and removes it on close; two connections
    never share one), and the bound on its size."""
    private = private_directory()
    return {"temp_directory": os.path.join(private, os.urandom(16).hex()),
            "max_temp_directory_size": f"{spill_limit(private)}B"}


# -- Landlock ------------------------------------------------------------------------------
# linux/landlock.h; the system call numbers are the same on every architecture but alpha.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
# write_file, remove_dir, remove_file, make_char, make_dir, make_reg, make_sock, make_fifo,
# make_block, make_sym; refer (ABI 2); truncate (ABI 3). Reading is not restricted.
_WRITES = {1: 0b1_1111_1111_0010, 2: 0b11_1111_1111_0010, 3: 0b111_1111_1111_0010}
_abi: int | None = None
_thread = threading.local()


def _syscall():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where there is none."""
    global _abi
    if _abi is None:
        _abi = 0
        if sys.platform.startswith("linux") and os.uname().machine != "alpha":
            try:
                found = _syscall().syscall(ctypes.c_long(_CREATE_RULESET), None, ctypes.c_size_t(0),
                                           ctypes.c_uint32(_CREATE_RULESET_VERSION))
                _abi = max(int(found), 0)
            except (OSError, AttributeError):
                _abi = 0
    return _abi


def confine_thread(writable: str) -> bool:
    """Forbid this thread (and threads it starts) to create, change or delete files anywhere
    but beneath ``writable``; False (and nothing changed) where Landlock is not available."""
    abi = landlock_abi()
    if abi < 1:
        return False
    rights = _WRITES[min(abi, 3)]
    libc = _syscall()
    attr = ctypes.create_string_buffer(struct.pack("=Q", rights), 8)
    ruleset = libc.syscall(ctypes.c_long(_CREATE_RULESET), attr, ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        beneath = os.open(writable, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, beneath), 12)
            if libc.syscall(ctypes.c_long(_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                            rule, ctypes.c_uint32(0)) < 0:
                return False
        finally:
            os.close(beneath)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0:
            return False
        _thread.confined = libc.syscall(ctypes.c_long(_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0
        return _thread.confined
    finally:
        os.close(ruleset)


def thread_confined() -> bool:
    """Whether this thread runs under ``confine_thread``."""
    return getattr(_thread, "confined", False)


def confinement() -> str:
    """How user SQL is kept from writing files beyond DuckDB's own guards: for the docs and tests."""
    return f"landlock (ABI {landlock_abi()})" if landlock_abi() >= 1 else "none"


def confined(work: Callable[[], T], on_interrupt: Callable[[], None] = lambda: None) -> T:
    """``work()`` in a new thread confined to the private directory; its result or its exception.

    A KeyboardInterrupt while waiting calls ``on_interrupt`` (interrupt the query) and is raised
    again here. Without Landlock, ``work()`` runs in this thread as it is."""
    if landlock_abi() < 1:
        return work()
    writable = private_directory()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            confine_thread(writable)
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001  (handed to the caller's thread)
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="nx-confined", daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        on_interrupt()
        thread.join(1.0)
        raise
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
