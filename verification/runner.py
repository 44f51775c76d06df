"""The one runner: ``srflow verify`` and ``srflow sweep`` submit their work to Dask.

``Cluster(address, workers)`` is a ``distributed.Client`` on the scheduler at ``address`` (a cluster someone
else started) or on a ``LocalCluster`` of ``workers`` processes with one thread each. A LocalCluster of srflow's
own keeps the guarantees of a command-line tool (tests/test_reliability.py):

* **workers die with their parent**, however it ends (``kill -9`` included): a worker plugin, set up as each
  worker starts (before it registers with the scheduler), makes each worker process end when the srflow process
  does (``die_with_parent``: ``prctl(PR_SET_PDEATHSIG)`` on Linux and a watchdog thread);
* **Ctrl-C is the parent's decision**: SIGINT is blocked while the cluster starts, so its event-loop thread and
  the worker processes it starts never take the signal a terminal sends to the whole process group; the parent's
  ``KeyboardInterrupt`` closes the cluster, which stops the workers, and a second Ctrl-C during that cleanup
  kills them at once and exits with status 130;
* **a dead worker is reported, with how it died**: the nanny (in this process) logs each worker process's death;
  ``deaths`` maps the pid to "killed by SIGKILL" / "exit code 1". With ``allowed_failures=0`` a task whose
  worker dies is not retried (``srflow verify``: a crash is reported, not repeated); a sweep keeps Dask's
  retries, so a cell whose worker is lost is recomputed elsewhere and finishes exactly once.

``run_tasks`` submits tasks and streams what they say: a task function receives ``send(msg)``, which publishes
``msg`` on an event topic as it happens (``Worker.log_event``); the client hands each message to
``on_message(i, msg)`` as it arrives, and ``on_done(i, value, error)`` when task ``i`` has finished.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import pickle
import queue
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from typing import Any, Callable

from threadpoolctl import threadpool_limits

#: BLAS threads of a job or sweep cell (in this process or on a worker): the dense matrices are at most a few hundred
#: wide (theory.DENSE_MAX_DIM), where OpenBLAS's threads only add synchronization, and two workers on two cores with
#: two threads each oversubscribe them (measured 2026-12-05 on the 2-core machine under load: eigh of a 200×200 matrix
#: 3.3 ms on one thread, 26 ms on two; of 36×36 0.12 ms and 0.87 ms). The JAX models' work is XLA's, not BLAS's.
#: (figures/_common.py limits its computations the same way.)
BLAS_THREADS = 1


def one_blas_thread():
    """A context in which BLAS uses BLAS_THREADS threads (``threadpoolctl``)."""
    return threadpool_limits(limits=BLAS_THREADS, user_api="blas")


#: exit status of a second Ctrl-C during cleanup (as a shell reports SIGINT)
EXIT_INTERRUPTED = 130
#: prctl option: signal sent to this process when its parent dies (linux/prctl.h)
PR_SET_PDEATHSIG = 1


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


def fork_is_safe() -> bool:
    """Whether this process may fork: not once JAX is imported (its runtime starts threads, and a forked child
    of a multithreaded process can deadlock -- JAX warns "os.fork() was called ..."). A fresh ``srflow verify``
    on numpy models never imports JAX, so its workers are forked; a process that has loaded JAX spawns them."""
    return "jax" not in sys.modules


class SchedulerUnreachable(OSError):
    """No Dask scheduler answered at the address given."""


class _DeathLog(logging.Handler):
    """Collects the nanny's "Worker process PID was killed by signal N" / "exited with status N" lines."""

    PATTERN = re.compile(r"Worker process (\d+) (was killed by signal (\d+)|exited with status (\d+))")

    def __init__(self):
        super().__init__(logging.INFO)
        self.deaths: dict[int, str] = {}

    def emit(self, record):
        m = self.PATTERN.search(record.getMessage())
        if m:
            pid = int(m.group(1))
            if m.group(3):
                try:
                    how = f"killed by {signal.Signals(int(m.group(3))).name}"
                except ValueError:
                    how = f"killed by signal {m.group(3)}"
            else:
                how = f"exit code {m.group(4)}"
            self.deaths[pid] = how


def _drop_heartbeat_failures(record: logging.LogRecord) -> bool:
    """Logging filter: False for distributed's "Failed to communicate with scheduler during heartbeat" record."""
    return "during heartbeat" not in record.getMessage()


def _die_with_parent_plugin(parent_pid: int):
    """A ``WorkerPlugin`` (imported lazily, as distributed is) for ``_DieWithParent``."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class DieWithParent(_DieWithParent, WorkerPlugin):
        pass

    return DieWithParent(parent_pid)


class _DieWithParent:
    """Worker plugin: the worker process ends when the process that started the LocalCluster does."""

    name = "srflow-die-with-parent"

    def __init__(self, parent_pid: int):
        self.parent_pid = parent_pid

    def setup(self, worker):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if os.getpid() != self.parent_pid:  # not a thread-based worker in the parent itself
            from .outdir import OutputLock

            OutputLock.close_inherited()  # a forked worker must not hold the output folder's lock
            die_with_parent(self.parent_pid)
            # a worker whose scheduler (in the parent) is going away after Ctrl-C may log "Failed to communicate
            # with scheduler during heartbeat" with a traceback just before it dies with the parent: noise on the
            # user's terminal, not an error of the run (a task's own errors come back through the client)
            logging.getLogger("distributed.worker").addFilter(_drop_heartbeat_failures)


class Cluster:
    """A Dask client on ``address``, or on a LocalCluster of ``workers`` processes (see the module docstring).

    ``fork``: start local workers by forking (they inherit the parent's modules and test monkeypatches) -- but
    only while JAX is not loaded in this process (``fork_is_safe``): JAX is multithreaded, and a process forked
    from it can deadlock, so then the workers are spawned as by default. ``allowed_failures``: how often a task
    whose worker dies is retried (None: Dask's default). ``timeout``: seconds to reach the scheduler at
    ``address``."""

    def __init__(self, address: str | None = None, workers: int | None = None, processes: bool = True,
                 fork: bool = False, allowed_failures: int | None = None, timeout: float = 30.0):
        import dask
        from distributed import Client, LocalCluster

        self.cluster, self.address = None, address
        #: worker address -> pid of our LocalCluster's workers (a task's own ("pid", …) message may be lost when
        #: its worker is killed before the message leaves)
        self.worker_pids: dict[str, int] = {}
        self.deaths = _DeathLog()
        # the nanny logs deaths at INFO, which silence_logs would drop: its logger keeps INFO for our handler and
        # stops propagating (its errors still reach stderr) while the cluster lives
        nanny = logging.getLogger("distributed.nanny")
        self._nanny_state = (nanny.level, nanny.propagate)
        self._errors = logging.StreamHandler()
        self._errors.setLevel(logging.ERROR)
        nanny.setLevel(logging.INFO)
        nanny.propagate = False
        nanny.addHandler(self.deaths)
        nanny.addHandler(self._errors)
        settings = {}
        if allowed_failures is not None:
            settings["distributed.scheduler.allowed-failures"] = allowed_failures
        #: whether the local workers were forked (False: spawned)
        self.forked = bool(fork and processes and not address and fork_is_safe())
        if self.forked:
            settings["distributed.worker.multiprocessing-method"] = "fork"
        self._config = dask.config.set(settings)
        self._config.__enter__()
        try:
            if address:
                try:
                    self.client = Client(address, timeout=timeout)
                except OSError as exc:
                    raise SchedulerUnreachable(f"--scheduler: cannot reach a Dask scheduler at {address} within "
                                               f"{timeout:g} s ({exc})") from exc
            else:
                n = workers or min(2, os.cpu_count() or 1)
                blocked = threading.current_thread() is threading.main_thread()
                old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if blocked else None
                try:  # threads and processes started now inherit the blocked SIGINT
                    # the plugin goes in with the workers' arguments, so each worker sets it up as it starts,
                    # before it registers with the scheduler: registered later through the client, it left a
                    # window (seconds on a busy machine) in which a kill -9 of this process orphaned the workers.
                    # Pickled by distributed's (cloud)pickle, as bytes: a spawned worker's arguments go through
                    # the standard pickle, which cannot carry the lazily defined plugin class.
                    from distributed.protocol import pickle as dask_pickle

                    plugins = (dask_pickle.dumps(_die_with_parent_plugin(os.getpid())),) if processes else ()
                    self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                                                dashboard_address=":0", silence_logs=logging.ERROR,
                                                plugins=plugins)
                    self.client = Client(self.cluster)
                    if processes:
                        self.worker_pids = self.client.run(os.getpid)
                finally:
                    if old is not None:
                        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        except BaseException:
            self._restore()
            raise

    @property
    def where(self) -> str:
        return self.address or "a LocalCluster"

    def _restore(self):
        self._config.__exit__(None, None, None)
        nanny = logging.getLogger("distributed.nanny")
        nanny.removeHandler(self.deaths)
        nanny.removeHandler(self._errors)
        nanny.level, nanny.propagate = self._nanny_state

    def how_died(self, pid: int | None, error: BaseException, wait: float = 0.0) -> str:
        """How the worker that ran a task died: "killed by SIGKILL", "exit code 1", or the error's name.
        ``pid`` from the task's own message, else from the dead worker's address (``KilledWorker``)."""
        last = getattr(error, "last_worker", None)
        if pid is None and last is not None:
            pid = self.worker_pids.get(getattr(last, "address", None))
        deadline = time.monotonic() + wait
        while pid not in self.deaths.deaths and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.deaths.deaths.get(pid, type(error).__name__)

    def close(self, before_exit: Callable[[], None] | None = None):
        """Close the client and our LocalCluster; a Ctrl-C meanwhile kills the worker processes, runs
        ``before_exit`` (e.g. the last write of a report; further signals ignored) and exits 130."""
        def hurry(signum, frame):
            for child in multiprocessing.active_children():
                child.kill()
            if before_exit is not None:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_IGN)
                try:
                    before_exit()
                except BaseException:  # noqa: BLE001 -- exiting anyway; say why the report may be stale
                    traceback.print_exc()
            os._exit(EXIT_INTERRUPTED)

        old = signal.signal(signal.SIGINT, hurry) if threading.current_thread() is threading.main_thread() else None
        try:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
            self._restore()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _task(fn: Callable, arg: Any, topic: str, index: int):
    """Run ``fn(arg, send)`` on a worker; ``send(msg)`` publishes (index, msg) on ``topic``. Returns the list of
    every message sent (the authoritative copy: events can arrive after the task's result)."""
    from distributed import get_worker

    worker, sent = get_worker(), []

    def send(msg):
        sent.append(msg)
        worker.log_event(topic, pickle.dumps((index, msg)))

    send(("pid", os.getpid()))
    fn(arg, send)
    return sent


def run_tasks(cluster: Cluster, fn: Callable, args: list, on_message: Callable[[int, Any], None],
              on_done: Callable[[int, list | None, BaseException | None], None],
              on_tick: Callable[[], None] | None = None, tick: float = 0.5, key: str = "srflow") -> None:
    """Submit ``fn(arg, send)`` for every arg; stream messages to ``on_message`` as they arrive, each exactly once
    and in the order sent; ``on_done(i, messages, error)`` when task i ends (``messages`` all it sent, or
    ``error`` the exception, e.g. ``KilledWorker``). Any exception here (Ctrl-C included) cancels the tasks."""
    client = cluster.client
    topic = f"{key}-{uuid.uuid4().hex}"
    inbox: queue.Queue = queue.Queue()
    client.subscribe_topic(topic, lambda event: inbox.put(pickle.loads(event[1])))
    seen = [0] * len(args)

    def deliver(i, messages):
        for msg in messages[seen[i]:]:
            on_message(i, msg)
        seen[i] = max(seen[i], len(messages))

    buffers: list[list] = [[] for _ in args]
    futures = {client.submit(_task, fn, arg, topic, i, key=f"{key}-{i}-{uuid.uuid4().hex[:8]}", pure=False): i
               for i, arg in enumerate(args)}
    pending = set(futures)
    try:
        while pending:
            deadline = time.monotonic() + tick
            while True:
                try:
                    i, msg = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                buffers[i].append(msg)
                deliver(i, buffers[i])
            done = {f for f in pending if f.done()}
            for fut in done:
                i = futures[fut]
                pending.discard(fut)
                if fut.status == "finished":
                    messages = fut.result()
                    deliver(i, messages)
                    on_done(i, messages, None)
                else:
                    deliver(i, buffers[i])
                    on_done(i, None, fut.exception())
                fut.release()
            if on_tick is not None:
                on_tick()
    except BaseException:
        for fut in pending:
            fut.cancel()
        raise
    finally:
        client.unsubscribe_topic(topic)
