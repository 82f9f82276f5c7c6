"""Shared pytest configuration. Fixtures that several test modules need live here."""

from __future__ import annotations

import os

import numpy as np
import pytest

# keep BLAS single-threaded under xdist so two workers do not fight over two cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# and keep the report's figures on one process (latentseg._fork): the tests of the two-process
# path (test_rendering.py) ask for it themselves
os.environ.setdefault("LATENTSEG_WORKERS", "1")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
