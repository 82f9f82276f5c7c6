"""Work done at the same time by a forked copy of this process (Linux, two CPUs or more).

:class:`Forked` runs ``work()`` in a child made by :func:`os.fork`: the child starts with
everything this process has (imported modules, data, drawn figures), so there is nothing to
start, import or send, and its return value comes back pickled through a temporary file. The
child runs no ``atexit`` handler, writes nothing to this process's stdout or stderr (its own go
to ``os.devnull``, so no lock that another thread of this process held at the fork can block
it), records the warnings it raises for this process to raise again, and leaves by
:func:`os._exit`. Whoever uses it keeps a way to do the work here instead: a child that fails,
or that is still running past a deadline, is stopped and its work done again in this process,
so that no result depends on it.

With ``stream=True`` the child can also send values while it works (``work(send)``; each sent
value is pickled to its own file, so the child never waits for the parent to read), and the
parent collects them as they come with :meth:`Forked.received`; :meth:`Forked.stalled` tells a
child that has stopped using the CPU (a deadlock) from one that is working.

The callers give the child work whose outcome is the same whichever process does it, so one
process or two write the same results: the report's figures (:mod:`latentseg.deliver.rendering`)
and the k sweep's EM families (:mod:`latentseg.choose.selection`; the child takes the families
whose set-up, numba's import and compiled kernels, the parent's own families do not need), and
a Bayesian fit's compiled kernels (:mod:`latentseg.models.bayes.engine`, ``_KernelWarmer``: the
child fills numba's disk cache with the sampler's kernel while the parent compiles the EM
start's). Where the child would repeat costly set-up the parent needs anyway it does not pay.
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Forked", "fork_workers", "workers_cap", "available_cpus", "WORKERS_ENV"]


#: Environment variable that caps the processes: ``1`` keeps all work in one process.
WORKERS_ENV = "LATENTSEG_WORKERS"


def fork_workers() -> int:
    """How many processes work may be shared between: 2 on Linux with two or more CPUs available
    to this process, else 1; ``LATENTSEG_WORKERS=1`` asks for 1 (:func:`workers_cap`, which
    raises ConfigError for a value that is not a whole number of at least 1).

    >>> fork_workers() in (1, 2)
    True
    """
    if workers_cap() < 2 or not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 1
    return 2 if available_cpus() >= 2 else 1


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (under taskset or a
    container's CPU set), not the machine's count.

    >>> available_cpus() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity masks (macOS, Windows)
        return os.cpu_count() or 1


def workers_cap() -> int:
    """The cap ``LATENTSEG_WORKERS`` puts on the processes or threads that share a piece of work
    (2 where it is not set): the test suite sets 1, as its own workers already share the CPUs.

    Raises
    ------
    ConfigError
        ``LATENTSEG_WORKERS`` is not a whole number of at least 1.

    Examples
    --------
    >>> workers_cap() >= 1
    True
    """
    from latentseg.errors import ConfigError

    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return 2
    try:
        cap = int(text)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ConfigError(f"The environment variable {WORKERS_ENV} must be a whole number of at least 1 "
                          f"(1: everything in one process); got {text!r}.")
    return cap


def _die_with(parent: int) -> None:
    """(In a forked child.) Be killed when the parent dies, however it dies (Linux's parent-death
    signal): a parent killed by SIGKILL or SIGTERM runs no ``finally`` to stop its child, which
    would otherwise go on working, holding the files the parent held open (a model's lock). Where
    that cannot be set, nothing changes; a parent already gone ends the child at once."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux, or no prctl: the parent's own cleanup only
        return
    if os.getppid() != parent:  # the parent died before the signal was set
        os._exit(1)


class Forked:
    """``work()`` running in a forked child; :meth:`result` waits for its return value.

    Parameters
    ----------
    work : callable
        Called in the child, with no argument (or with ``send`` when ``stream``); its return value
        must pickle.
    stream : bool, default False
        Call ``work(send)``: ``send(value)`` hands a picklable value to this process at once
        (:meth:`received`).

    Attributes
    ----------
    pid : int or None
        The child's process id; None where forking failed (do the work here).

    Examples
    --------
    >>> child = Forked(lambda: sum(range(10)))
    >>> child.result(timeout=60) if child.pid else (True, 45)
    (True, 45)
    >>> def count(send):
    ...     for i in range(3):
    ...         send(i)
    ...     return "done"
    >>> child = Forked(count, stream=True)
    >>> if child.pid:
    ...     ok, value = child.result(timeout=60)
    ...     sent = child.received()
    ...     child.stop()
    ... else:  # forking failed: the work is done here
    ...     ok, value, sent = True, "done", [0, 1, 2]
    >>> ok, value, sent
    (True, 'done', [0, 1, 2])
    """

    def __init__(self, work: Callable[..., Any], *, stream: bool = False) -> None:
        self._dir = tempfile.mkdtemp(prefix="latentseg-fork-")
        self._out = Path(self._dir) / "result.pickle"
        self._stream = stream
        self._sent = 0  # values sent (in the child)
        self._read = 0  # values received (in this process)
        self._cpu: tuple[float, float] | None = None  # (child's CPU seconds, when last seen to grow)
        self.pid: int | None = None
        parent = os.getpid()
        try:
            with warnings.catch_warnings():
                # Python warns about fork() in a process with other threads (a progress ticker), and
                # JAX when it is loaded (a Bayesian fit through NumPyro): the child takes none of
                # their locks (own stdio, warnings recorded, no JAX call) and is stopped and replaced
                # if it ever stalls
                warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning)
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                pid = os.fork()
        except OSError:
            self._cleanup()
            return
        if pid == 0:
            _die_with(parent)
            # the child shares this process's pages until it writes to them; a collection walking
            # the heap would write to every object: a child that only renders does not collect (one
            # that streams, a sweep's families, runs long enough to need it and collects)
            if not stream:
                gc.disable()
            self._child(work)  # never returns
        self.pid = pid

    def _child(self, work: Callable[[], Any]) -> None:
        code = 1
        try:
            devnull = open(os.devnull, "w")  # noqa: SIM115 - closed by os._exit
            sys.stdout = sys.stderr = devnull
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = work(self._send) if self._stream else work()
            raised = [(w.message, w.category, w.filename, w.lineno) for w in caught]
            tmp = self._out.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                pickle.dump((value, raised), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self._out)
            code = 0
        except BaseException:  # noqa: BLE001 - the exit code says it; the parent does the work again
            code = 1
        finally:
            os._exit(code)

    def _send(self, value: Any) -> None:
        """(In the child) hand ``value`` to the parent: pickled to its own file, renamed into place whole."""
        path = Path(self._dir) / f"sent-{self._sent:06d}.pickle"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        self._sent += 1

    def received(self) -> list[Any]:
        """The values the child has sent (``stream=True``) since the last call, in the order sent;
        also after :meth:`result` (until :meth:`stop`)."""
        out = []
        while True:
            path = Path(self._dir) / f"sent-{self._read:06d}.pickle"
            try:
                with open(path, "rb") as fh:
                    out.append(pickle.load(fh))
            except (FileNotFoundError, EOFError, pickle.UnpicklingError):
                return out
            self._read += 1

    def stalled(self, seconds: float) -> bool:
        """True when the child still runs but has used no CPU time for ``seconds`` (it waits on
        something that will not come, such as a lock taken at the fork); False while it works,
        after it ended, or where the CPU time cannot be read (not Linux)."""
        if self.pid is None:
            return False
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return False
        now = time.monotonic()
        if self._cpu is None or cpu > self._cpu[0]:
            self._cpu = (cpu, now)
            return False
        return now - self._cpu[1] >= seconds

    def done(self) -> bool:
        """True when the child has ended (:meth:`result` then returns at once)."""
        if self.pid is None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def result(self, timeout: float) -> tuple[bool, Any]:
        """Wait up to ``timeout`` seconds: ``(True, value)`` when the child ended well (the warnings it
        raised are raised here again), else ``(False, None)`` (the child failed, or was still
        running and has been stopped)."""
        if self.pid is None:
            return False, None
        try:
            ok = _wait(self.pid, timeout)
            if ok is None:
                return False, None
            self.pid = None  # reaped
            if not ok or not self._out.exists():
                return False, None
            with open(self._out, "rb") as fh:
                value, raised = pickle.load(fh)
        finally:
            if self._stream and self.pid is None:
                self._stop_child()  # the values sent stay readable until stop()
            else:
                self.stop()
        for message, category, filename, lineno in raised:
            warnings.warn_explicit(message, category, filename, lineno)
        return True, value

    def stop(self) -> None:
        """Stop the child if it still runs (and reap it), and remove its files."""
        self._stop_child()
        self._cleanup()

    def _stop_child(self) -> None:
        if self.pid is not None:
            import signal

            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None

    def _cleanup(self) -> None:
        import shutil

        shutil.rmtree(self._dir, ignore_errors=True)


def _wait(pid: int, timeout: float) -> bool | None:
    """True when the child ended well, False when it failed, None when still running after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        if time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
