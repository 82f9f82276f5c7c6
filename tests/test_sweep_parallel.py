"""The k sweep shared between two processes (select's second process, latentseg._fork streaming),
the first-fit checkpoint rule, and the stability check's own adjusted Rand index."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import latentseg._fork as fork_mod
import latentseg.choose.selection as selection
from latentseg._stats import adjusted_rand_index
from latentseg.choose.selection import select

# three groups on the opportunity scale (0-20), so the latent class fits have levels to work with
_RNG = np.random.default_rng(11)
X = pd.DataFrame(np.clip(np.r_[_RNG.normal(5, 1.5, (60, 4)), _RNG.normal(12, 1.5, (50, 4)),
                               _RNG.normal([5, 16, 9, 14], 1.5, (40, 4))], 0, 20),
                 columns=["a", "b", "c", "d"])
MODELS = ("kmeans", "gmm", "lca")
KS = [2, 3, 4]


def _sweep(monkeypatch: pytest.MonkeyPatch, workers: int, progress=None, **kw):
    monkeypatch.setattr(fork_mod, "fork_workers", lambda: workers)
    return select(X, models=MODELS, k=KS, random_seed=5, stability_subsamples=2, progress=progress, **kw)


def _same(a, b) -> None:
    cols = [c for c in a.table.columns if c != "seconds"]
    pd.testing.assert_frame_equal(a.table[cols], b.table[cols])
    assert a.recommended_k == b.recommended_k and a.rule == b.rule
    for key, res in a.results.items():
        other = b.results[key]
        np.testing.assert_array_equal(res.assignment, other.assignment)
        np.testing.assert_array_equal(res.memberships, other.memberships)


@pytest.fixture(scope="module")
def serial():
    mp = pytest.MonkeyPatch()
    try:
        yield _sweep(mp, 1)
    finally:
        mp.undo()


def test_two_processes_give_the_serial_sweep_and_say_every_fit(monkeypatch, serial):
    completed: list[str] = []
    finish = selection._SweepWorker.finish

    def spy(self, *args, **kw):
        out = finish(self, *args, **kw)
        completed.extend(self.completed)  # the families the second process completed
        return out

    monkeypatch.setattr(selection._SweepWorker, "finish", spy)
    seen: list[tuple[int, int, str]] = []
    par = _sweep(monkeypatch, 2, progress=lambda d, t, s: seen.append((d, t, s)))
    assert completed[0] == "gmm"  # the Gaussian mixture was fitted by the second process (and maybe lca)
    _same(par, serial)  # bit for bit: every fit has its own seed
    total = len(MODELS) * len(KS)
    ended = [s for _, _, s in seen if not s.endswith("(running)")]
    assert sorted(ended) == sorted(f"{m} k={k} (done)" for m in MODELS for k in KS)  # each fit said once
    assert [d for d, _, s in seen if not s.endswith("(running)")] == list(range(1, total + 1))
    assert all(t == total for _, t, _ in seen)
    # a fit said to run was not yet said to be done
    for i, (_, _, s) in enumerate(seen):
        if s.endswith("(running)"):
            assert s.replace("(running)", "(done)") not in [x for _, _, x in seen[:i]]


def test_the_second_process_takes_a_family_this_one_has_not_reached(monkeypatch, serial):
    import os

    parent = os.getpid()
    family = selection._Plan._family
    completed: list[str] = []
    finish = selection._SweepWorker.finish

    def slow_here(self, model):
        if os.getpid() == parent and model == "kmeans":  # busy here until the child, done with gmm, takes lca
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(self.worker.claims, "lca")) and time.monotonic() < deadline:
                time.sleep(0.02)
        return family(self, model)

    def spy(self, *args, **kw):
        out = finish(self, *args, **kw)
        completed.extend(self.completed)
        return out

    monkeypatch.setattr(selection._Plan, "_family", slow_here)
    monkeypatch.setattr(selection._SweepWorker, "finish", spy)
    _same(_sweep(monkeypatch, 2), serial)
    assert completed == ["gmm", "lca"]  # lca taken from the back by the child


def test_a_failing_second_process_leaves_its_families_to_this_one(monkeypatch, serial):
    def fail(self, send):
        send(("running", "gmm", 2, "gmm k=2 (running)"))
        raise RuntimeError("the child breaks")

    monkeypatch.setattr(selection._SweepWorker, "_work", fail)
    _same(_sweep(monkeypatch, 2), serial)


def test_a_stuck_second_process_is_stopped_and_its_families_fitted_here(monkeypatch, serial):
    def stuck(self, send):
        time.sleep(120)  # no CPU used: a deadlock, as far as the parent can tell

    monkeypatch.setattr(selection._SweepWorker, "_work", stuck)
    monkeypatch.setattr(selection, "STALL_S", 0.5)
    t0 = time.perf_counter()
    _same(_sweep(monkeypatch, 2), serial)
    assert time.perf_counter() - t0 < 60  # not waiting for the sleeper


def test_checkpoints_of_two_processes_resume(monkeypatch, serial, tmp_path):
    first = _sweep(monkeypatch, 2, checkpoint_dir=tmp_path, checkpoint_min_seconds=0)
    # every fit checkpointed, the second process's (gmm) by itself
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{m}-k{k}.json" for m in MODELS for k in KS)
    seen: list[str] = []
    resumed = _sweep(monkeypatch, 2, progress=lambda d, t, s: seen.append(s), checkpoint_dir=tmp_path,
                     checkpoint_min_seconds=0)
    assert sorted(seen) == sorted(f"{m} k={k} (loaded)" for m in MODELS for k in KS)
    _same(resumed, first)
    _same(first, serial)


def _child_waits_for(monkeypatch, marker) -> None:
    """The child starts its families only once ``marker`` exists (made by the hook), so the hook
    finds the child still fitting on any machine, however fast the child's families are."""
    import os

    parent = os.getpid()
    family = selection._Plan._family

    def held(self, model):
        if os.getpid() != parent:
            deadline = time.monotonic() + 60
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return family(self, model)

    monkeypatch.setattr(selection._Plan, "_family", held)


def test_the_idle_work_runs_here_before_the_childs_families_and_changes_nothing(monkeypatch, serial, tmp_path):
    """``while_waiting`` runs once, in this process, once its first family (kmeans) is done and
    before it takes another: working until the child is done leaves lca to the child."""
    import os

    parent = os.getpid()
    calls: list[tuple[int, bool]] = []
    completed: list[str] = []
    finish = selection._SweepWorker.finish

    def spy(self, *args, **kw):
        out = finish(self, *args, **kw)
        completed.extend(self.completed)
        return out

    def idle(still_waiting):
        calls.append((os.getpid(), still_waiting()))
        (tmp_path / "hook").touch()
        deadline = time.monotonic() + 120
        while still_waiting() and time.monotonic() < deadline:  # turns False once the child is done
            time.sleep(0.01)
        calls.append((os.getpid(), time.monotonic() < deadline))  # (the hook's own errors are swallowed)

    monkeypatch.setattr(selection._SweepWorker, "finish", spy)
    _child_waits_for(monkeypatch, tmp_path / "hook")
    par = _sweep(monkeypatch, 2, while_waiting=idle)
    assert calls == [(parent, True), (parent, True)]  # called once, here, and released before the deadline
    assert completed == ["gmm", "lca"]  # this process waited instead of taking lca
    _same(par, serial)


def test_idle_work_is_released_when_the_child_stalls(monkeypatch, serial):
    def stuck(self, send):
        time.sleep(120)  # no CPU used: a deadlock, as far as the parent can tell

    monkeypatch.setattr(selection._SweepWorker, "_work", stuck)
    monkeypatch.setattr(selection, "STALL_S", 0.5)
    waited: list[float] = []

    def idle(still_waiting):
        t0 = time.monotonic()
        while still_waiting() and time.monotonic() - t0 < 60:
            time.sleep(0.01)
        waited.append(time.monotonic() - t0)

    _same(_sweep(monkeypatch, 2, while_waiting=idle), serial)
    assert len(waited) == 1 and waited[0] < 30  # released by the stall rule (0.5 s here), not the 60 s cap


def test_idle_work_that_fails_or_no_second_process(monkeypatch, serial, tmp_path):
    raised: list[int] = []

    def broken(still_waiting):
        raised.append(1)
        (tmp_path / "hook").touch()
        raise RuntimeError("the caller's own step does it again")

    with monkeypatch.context() as held:
        _child_waits_for(held, tmp_path / "hook")
        _same(_sweep(monkeypatch, 2, while_waiting=broken), serial)
    assert raised == [1]
    calls: list[int] = []
    _same(_sweep(monkeypatch, 1, while_waiting=lambda w: calls.append(1)), serial)
    assert calls == []  # without a second process there is no idle time to fill
    with pytest.raises(TypeError, match="while_waiting must be a callable"):
        _sweep(monkeypatch, 2, while_waiting="imports")


def test_the_run_imports_its_later_steps_only_while_waiting(monkeypatch):
    import importlib
    import importlib.util

    from latentseg import pipeline
    from latentseg.deliver.report import IMPORTED_AS_IT_GOES

    tried: list[str] = []
    monkeypatch.setattr(importlib, "import_module", lambda name: tried.append(name))
    budget = iter([True, True, True, False])
    pipeline._import_later_steps(True, lambda: next(budget))
    assert tried == list(IMPORTED_AS_IT_GOES[:3])  # the report's matplotlib first, then stops when told
    tried.clear()
    pipeline._import_later_steps(False, lambda: True)
    assert tried == list(pipeline._LATER_MODULES)  # no report: none of its modules
    for name in IMPORTED_AS_IT_GOES + pipeline._LATER_MODULES:  # every name is a real module
        assert importlib.util.find_spec(name) is not None, name


def _timed_fits(monkeypatch, seconds: dict[int, float]) -> None:
    """Every fit reports the time given for its k (0 for the others), whatever it really took: the
    rule is judged on those times alone, on any machine and with a cold or warm numba cache."""
    real = selection._fit_one

    def timed(data, model, k, *args, **kw):
        rec = real(data, model, k, *args, **kw)
        rec.row["seconds"] = float(seconds.get(k, 0.0))
        return rec

    monkeypatch.setattr(selection, "_fit_one", timed)


@pytest.mark.parametrize(("seconds", "kept"), [
    ({2: 0.4}, []),  # a first fit slow by one-off costs, the next fast: neither kept
    ({2: 0.4, 3: 0.4}, ["gmm-k2.json", "gmm-k3.json"]),  # both slow: both kept
    ({2: 1.2}, ["gmm-k2.json"]),  # a first fit past 5 x the threshold is kept at once
    ({4: 0.4}, ["gmm-k4.json"]),  # a later slow fit is kept
])
def test_a_first_fit_is_judged_by_the_next(monkeypatch, tmp_path, seconds, kept):
    _timed_fits(monkeypatch, seconds)
    monkeypatch.setattr(fork_mod, "fork_workers", lambda: 1)
    # threshold 0.2 s: the times given are 2 x it (inside 5 x) or 6 x it, the others 0
    select(X, models=("gmm",), k=KS, random_seed=5, stability_subsamples=0, checkpoint_dir=tmp_path,
           checkpoint_min_seconds=0.2, fit_options={"gmm": {"n_init": 1}})
    assert sorted(p.name for p in tmp_path.glob("*.json")) == kept


def test_an_interrupted_sweep_keeps_a_first_fit_held_for_the_next(monkeypatch, tmp_path):
    """Ctrl-C during a family's second fit: its first fit, held to be judged by the second, is
    written all the same (it took the threshold; only the fits not finished are lost)."""
    _timed_fits(monkeypatch, {2: 0.4})
    monkeypatch.setattr(fork_mod, "fork_workers", lambda: 1)
    real = selection._fit_one

    def interrupted(data, model, k, *args, **kw):
        if k == 3:
            raise KeyboardInterrupt
        return real(data, model, k, *args, **kw)

    monkeypatch.setattr(selection, "_fit_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        select(X, models=("gmm",), k=KS, random_seed=5, stability_subsamples=0, checkpoint_dir=tmp_path,
               checkpoint_min_seconds=0.2, fit_options={"gmm": {"n_init": 1}})
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["gmm-k2.json"]


def test_the_adjusted_rand_index_is_scikit_learns():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(3)
    for t in range(300):
        n = int(rng.integers(2, 300))
        a = rng.integers(0, rng.integers(1, 8), n)
        b = np.where(rng.random(n) < 0.7, a, rng.integers(0, rng.integers(1, 8), n)) if t % 2 else \
            rng.integers(0, rng.integers(1, 8), n)
        assert adjusted_rand_index(a, b) == adjusted_rand_score(a, b)  # the same float
    assert adjusted_rand_index(["x", "x", "y"], [2, 2, 7]) == 1.0
