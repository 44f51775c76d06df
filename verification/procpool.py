"""A small process pool that never leaves a process behind, for ``srflow verify``.

Each job runs in its own forked process (at most ``workers`` at a time) and sends messages back through its
own pipe, so a crashing job cannot block or corrupt the others. Guarantees:

* **workers die with their parent**, however it ends (``kill -9`` included): on Linux the kernel sends SIGKILL
  when the parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and as a second line, a watchdog thread
  exits when the parent pid changes.
* **Ctrl-C is the parent's decision**: workers ignore SIGINT (a terminal sends it to the whole process
  group); the parent's ``KeyboardInterrupt`` stops every worker (SIGTERM, then SIGKILL) before it propagates.
  A second Ctrl-C during that cleanup kills the workers at once and exits with status 130.
* **a crash is reported, not hidden**: an exception in a job is sent back as ``("crash", traceback)``; a job
  whose process dies without a word (a segfault, the OOM killer) is reported through ``on_exit`` with its exit
  code.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable

#: prctl option: signal sent to this process when its parent dies (linux/prctl.h)
PR_SET_PDEATHSIG = 1
#: seconds a terminated worker gets before SIGKILL
TERMINATE_GRACE = 2.0


def die_with_parent(parent_pid: int) -> None:
    """Make the calling (child) process end when ``parent_pid`` ends."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="srflow-parent-watchdog", daemon=True).start()


def _child(target: Callable, job: Any, conn, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    die_with_parent(parent_pid)
    from .outdir import OutputLock

    OutputLock.close_inherited()
    try:
        target(job, conn.send)
    except BaseException:  # noqa: BLE001 -- everything goes back to the parent
        try:
            conn.send(("crash", traceback.format_exc()))
        except Exception:  # noqa: BLE001 -- the pipe itself is broken: the exit code tells
            os._exit(3)
    finally:
        conn.close()


class _SigintBlocked:
    """Block SIGINT around ``fork`` so a child never sees it before it has chosen to ignore it."""

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        else:
            self.old = None

    def __exit__(self, *exc):
        if self.old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def run_jobs(jobs: list, target: Callable[[Any, Callable], None], workers: int,
             on_message: Callable[[int, Any], None], on_exit: Callable[[int, int], None],
             on_tick: Callable[[], None] | None = None, tick: float = 0.5, spawn: bool = False) -> None:
    """Run ``target(job, send)`` for every job in child processes, ``workers`` at a time.

    ``on_message(i, msg)`` sees each message sent by job ``i`` (``("crash", traceback)`` when it raised);
    ``on_exit(i, exitcode)`` is called when job ``i``'s process has ended; ``on_tick()`` every ``tick`` seconds.
    Any exception in the parent (``KeyboardInterrupt`` included) stops all workers before it propagates.
    """
    # ``spawn``: the jobs use JAX, which is multithreaded: a forked child that runs JAX can deadlock
    if (not sys.platform.startswith("linux") and sys.platform != "darwin") or spawn:
        ctx = mp.get_context("spawn")
    else:
        ctx = mp.get_context("fork")
    pending = list(enumerate(jobs))
    running: dict = {}  # connection -> (index, process)
    try:
        while pending or running:
            while pending and len(running) < workers:
                i, job = pending.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(target, job, send, os.getpid()), daemon=True,
                                   name=f"srflow-job-{i}")
                with _SigintBlocked():
                    proc.start()
                send.close()
                running[recv] = (i, proc)
            for conn in mpc.wait(list(running), timeout=tick):
                i, proc = running[conn]
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    conn.close()
                    del running[conn]
                    proc.join()
                    on_exit(i, proc.exitcode)
                    continue
                on_message(i, msg)
            if on_tick is not None:
                on_tick()
    except BaseException:
        stop([proc for _, proc in running.values()])
        raise


def stop(procs: list) -> None:
    """Terminate ``procs`` (SIGTERM, then SIGKILL after TERMINATE_GRACE s); a Ctrl-C meanwhile kills them at
    once and exits the parent with status 130."""
    def hurry(signum, frame):
        for p in procs:
            if p.is_alive():
                p.kill()
        os._exit(130)

    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGINT, hurry)
    try:
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + TERMINATE_GRACE
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
