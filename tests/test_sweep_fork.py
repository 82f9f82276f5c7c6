"""The sweep's families that are not Bayesian shared with a forked worker (choose.selection with
latentseg._fork): the same selection as on one process; a worker that fails leaves its families
to this process; the warnings it raises are raised here."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import latentseg._fork as fork
from latentseg.choose import selection as sel

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker is forked on Linux only")

MODELS = ("kmeans", "gmm", "lca")


@pytest.fixture
def forks(monkeypatch):
    made: list[int] = []
    real = os.fork

    def counted():
        pid = real()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counted)
    return made


def _select(X, workers, monkeypatch):
    monkeypatch.setattr(fork, "fork_workers", lambda: workers)
    return sel.select(X, models=MODELS, k=[2, 3, 4], random_seed=11, stability_subsamples=3)


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(3)
    centers = np.array([[2.0, 14, 5, 9], [12, 3, 8, 15], [7, 8, 16, 2]])
    return np.clip(np.repeat(centers, [70, 50, 30], axis=0) + rng.normal(scale=2.0, size=(150, 4)), 0, 20)


@pytest.fixture(scope="module")
def serial(X):
    mp = pytest.MonkeyPatch()
    try:
        return _select(X, 1, mp)
    finally:
        mp.undo()


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.table.drop(columns=["seconds"]), b.table.drop(columns=["seconds"]))
    assert (a.recommended_k, a.rule, a.per_family, a.notes) == (b.recommended_k, b.rule, b.per_family, b.notes)
    assert [(r.model, r.k) for r in a.records] == [(r.model, r.k) for r in b.records]
    for ra, rb in zip(a.records, b.records, strict=True):
        assert np.array_equal(ra.result.memberships, rb.result.memberships), (ra.model, ra.k)


def test_a_forked_worker_gives_the_same_selection(X, serial, monkeypatch, forks):
    two = _select(X, 2, monkeypatch)
    assert len(forks) == 1  # gmm went to the worker
    assert serial.recommended_k is not None
    assert "stability_mean" in serial.table.columns and serial.table["stability_mean"].notna().sum() >= 2
    _same(serial, two)


def test_a_failed_worker_leaves_its_families_to_this_process(X, serial, monkeypatch, forks):
    parent, real = os.getpid(), sel._Plan._family

    def breaks_in_worker(self, model):
        if os.getpid() != parent:
            raise RuntimeError("a worker that breaks")
        return real(self, model)

    monkeypatch.setattr(sel._Plan, "_family", breaks_in_worker)
    _same(serial, _select(X, 2, monkeypatch))
    assert len(forks) == 1


def test_the_workers_warnings_are_raised_here(X, serial, monkeypatch, forks):
    parent, real = os.getpid(), sel._Plan._family

    def warns_in_worker(self, model):
        if os.getpid() != parent:
            warnings.warn(f"a note from the worker fitting {model}", UserWarning, stacklevel=1)
        return real(self, model)

    monkeypatch.setattr(sel._Plan, "_family", warns_in_worker)
    with pytest.warns(UserWarning, match="a note from the worker fitting gmm"):
        two = _select(X, 2, monkeypatch)
    assert len(forks) == 1
    _same(serial, two)


def test_the_environment_can_keep_everything_in_one_process(monkeypatch):
    from latentseg.errors import ConfigError

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("LATENTSEG_WORKERS", "1")
    assert fork.fork_workers() == 1
    monkeypatch.setenv("LATENTSEG_WORKERS", "2")
    assert fork.fork_workers() == (2 if len(os.sched_getaffinity(0)) >= 2 else 1)
    monkeypatch.setenv("LATENTSEG_WORKERS", "two")
    with pytest.raises(ConfigError, match="LATENTSEG_WORKERS must be a whole number"):
        fork.fork_workers()
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("LATENTSEG_WORKERS")
    assert fork.fork_workers() == 1
