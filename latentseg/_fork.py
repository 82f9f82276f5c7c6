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

The caller (the report's figures, :mod:`latentseg.deliver.rendering`) gives the child work whose
outcome is the same whichever process does it, so one process or two write the same results.
Where the child would repeat costly set-up the parent needs anyway it does not pay: the sweep's
families were tried this way and lost (the child initialised numba and loaded the kernels the
parent then loaded again, and copied some 300 MB of pages: 2.5-3 s more CPU for a run, against
at most 1 s of wall time saved on an idle machine).
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

__all__ = ["Forked", "fork_workers", "WORKERS_ENV"]


#: Environment variable that caps the processes: ``1`` keeps all work in one process.
WORKERS_ENV = "LATENTSEG_WORKERS"


def fork_workers() -> int:
    """How many processes work may be shared between: 2 on Linux with two or more CPUs available
    to this process, else 1; the environment variable ``LATENTSEG_WORKERS=1`` asks for 1 (the test
    suite sets it: its own workers already share the CPUs).

    Raises
    ------
    ConfigError
        ``LATENTSEG_WORKERS`` is not a whole number of at least 1.

    Examples
    --------
    >>> fork_workers() in (1, 2)
    True
    """
    from latentseg.errors import ConfigError

    text = os.environ.get(WORKERS_ENV, "").strip()
    cap = 2
    if text:
        try:
            cap = int(text)
        except ValueError:
            cap = 0
        if cap < 1:
            raise ConfigError(f"The environment variable {WORKERS_ENV} must be a whole number of at least 1 "
                              f"(1: everything in one process); got {text!r}.")
    if cap < 2 or not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 1
    try:
        return 2 if len(os.sched_getaffinity(0)) >= 2 else 1
    except (AttributeError, OSError):  # pragma: no cover - Linux always has it
        return 1


class Forked:
    """``work()`` running in a forked child; :meth:`result` waits for its return value.

    Parameters
    ----------
    work : callable
        Called with no argument in the child; its return value must pickle.

    Attributes
    ----------
    pid : int or None
        The child's process id; None where forking failed (do the work here).

    Examples
    --------
    >>> child = Forked(lambda: sum(range(10)))
    >>> child.result(timeout=60) if child.pid else (True, 45)
    (True, 45)
    """

    def __init__(self, work: Callable[[], Any]) -> None:
        self._dir = tempfile.mkdtemp(prefix="latentseg-fork-")
        self._out = Path(self._dir) / "result.pickle"
        self.pid: int | None = None
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
            # the child shares this process's pages until it writes to them; a collection walking
            # the heap would write to every object: the short-lived child does not collect
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
                value = work()
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
            self.stop()
        for message, category, filename, lineno in raised:
            warnings.warn_explicit(message, category, filename, lineno)
        return True, value

    def stop(self) -> None:
        """Stop the child if it still runs (and reap it), and remove its files."""
        if self.pid is not None:
            import signal

            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None
        self._cleanup()

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
