"""The Bayesian latent class model (``model="bayes-lca"``): priors, PyMC model, fast kernel.

The model, for respondents ``n`` and categorical indicators ``i = 1..J`` with categories
``0..C_i - 1`` (coded as in :func:`latentseg.models.lca.fit_lca`), marginalised over the class::

    w ~ Dirichlet(alpha, ..., alpha)
    categorical:  pi_ji ~ Dirichlet(beta, ..., beta)
    ordinal:      P(y_i = m | j) ∝ exp(m b_ji - sum_{l < m} tau_il)   (adjacent-category logit)
                  b_ji ~ Normal(0, location_scale); tau_i. ~ zero-sum Normal(0, threshold_scale)
    log p(y_n) = logsumexp_j [log w_j + sum_{i observed} log P(y_ni | j)]

The ordinal model is the EM engine's (thresholds shared by the classes, summing to zero within an
item, class locations ``b``), so the EM solution is a point of the same parameter space. Missing
indicators drop out of a respondent's sum. Priors and reasons: ``docs/priors.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentseg.errors import ConfigError
from latentseg.models._em import check_k
from latentseg.models.bayes.gmm import pymc_mixture_model, simplex_coords, simplex_probs
from latentseg.models.families import BAYES_LCA

__all__ = ["LCAPriors", "LatentClassFamily", "MEASUREMENTS"]

MEASUREMENTS = ("categorical", "binary", "ordinal")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_PROB_FLOOR = 1e-4  # EM probabilities at 0 / 1 are moved this far inside for a finite start


@dataclass(frozen=True)
class LCAPriors:
    """Hyperparameters of the Bayesian latent class model (see ``docs/priors.md``).

    Attributes
    ----------
    concentration : float, default 1.0
        Dirichlet concentration of the class weights.
    item_concentration : float, default 1.0
        Dirichlet concentration of each class's response probabilities on an item (categorical).
    location_scale : float, default 2.5
        Prior sd of an ordinal class location (logit units per category step).
    threshold_scale : float, default 2.5
        Prior sd of an ordinal threshold (zero-sum within an item).
    """

    concentration: float = 1.0
    item_concentration: float = 1.0
    location_scale: float = 2.5
    threshold_scale: float = 2.5

    def __post_init__(self) -> None:
        for name in ("concentration", "item_concentration", "location_scale", "threshold_scale"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val) or val <= 0:
                raise ConfigError(f"The '{name}' prior parameter of bayes-lca must be a number > 0. Got {val!r} instead.")


class LatentClassFamily:
    """Everything the fitting loop needs to know about a latent class model on one data set."""

    model = BAYES_LCA
    #: the name of :meth:`c_kernel`'s compiled C log density (what the forked warmer compiles)
    c_kernel_name = "categorical"
    feature_dim = "indicator"
    segment_keys = ("weights", "probs", "locations")
    #: survey weights (n,), used as given (the pseudo-likelihood), or None; set by the engine
    sample_weight: np.ndarray | None = None

    def __init__(self, data: Any, k: int, measurement: str, priors: LCAPriors) -> None:
        from latentseg.prepare.encoding import encode_indicators

        if measurement not in MEASUREMENTS:
            raise ConfigError(
                f"The 'measurement' parameter of bayes-lca must be one of {', '.join(MEASUREMENTS)}. "
                f"Got {measurement!r} instead."
            )
        enc = encode_indicators(data, measurement)
        codes_f = np.where(enc.codes >= 0, enc.codes, np.nan).astype(float)
        k = check_k(k, codes_f, BAYES_LCA)
        self.data = data
        self._prepare(enc.codes, enc.n_cat, enc.items, enc.ids, k, measurement, priors, enc=enc)

    @classmethod
    def for_scoring(cls, result: Any, data: Any) -> LatentClassFamily:
        """A family on new respondents, with the fitted result's category coding."""
        from latentseg.prepare.encoding import encode_new_indicators

        codes = encode_new_indicators(result, data)
        cats = result.extras["categories"]
        n_cat = np.array([int((cats["item"] == item).sum()) for item in result.feature_names], dtype=np.int64)
        st = result.settings
        priors = LCAPriors(
            st.get("concentration", 1.0), st.get("item_concentration", 1.0),
            st.get("location_scale", 2.5), st.get("threshold_scale", 2.5),
        )
        ids = data.index if isinstance(data, pd.DataFrame) else pd.RangeIndex(1, codes.shape[0] + 1)
        obj = cls.__new__(cls)
        obj._prepare(codes, n_cat, tuple(result.feature_names), ids, result.k, st.get("measurement", "categorical"), priors)
        return obj

    def _prepare(
        self,
        codes: np.ndarray,
        n_cat: np.ndarray,
        items: tuple[str, ...],
        ids: pd.Index,
        k: int,
        measurement: str,
        priors: LCAPriors,
        enc: Any = None,
    ) -> None:
        self.enc = enc
        self.k = k
        self.measurement = measurement
        self.ordinal = measurement == "ordinal"
        self.priors = priors
        self.codes = codes
        self.ncat = np.asarray(n_cat, dtype=np.int64)
        self.feature_names = tuple(items)
        self.respondent_ids = pd.Index(ids)
        self.n, self.J = codes.shape
        self.C = int(self.ncat.sum())
        self.cmax = int(self.ncat.max())
        self.offsets = np.r_[0, np.cumsum(self.ncat)[:-1]].astype(np.int64)
        Y = np.zeros((self.n, self.C))
        rows, cols = np.nonzero(codes >= 0)
        Y[rows, self.offsets[cols] + codes[rows, cols]] = 1.0
        self.Y = Y
        self.block = np.zeros((self.C, self.J))  # category -> item indicator
        for i, (o, c) in enumerate(zip(self.offsets, self.ncat)):
            self.block[o : o + c, i] = 1.0
        self.item_of = np.repeat(np.arange(self.J), self.ncat)
        self.level_of = np.concatenate([np.arange(c) for c in self.ncat])
        self.free_offsets = np.r_[0, np.cumsum(self.ncat - 2)[:-1]].astype(np.int64)
        self.n_free_tau = int((self.ncat - 2).sum())
        if enc is not None:
            vals = []
            for v in enc.values:
                vals.append(v if np.all(np.isfinite(v)) else np.arange(len(v), dtype=float))
            self.values = np.concatenate(vals)
        else:
            self.values = self.level_of.astype(float)

    # ------------------------------------------------------------------ description
    has_kernel = True

    def settings(self) -> dict[str, Any]:
        p = self.priors
        out: dict[str, Any] = {"measurement": self.measurement, "concentration": p.concentration}
        if self.ordinal:
            out.update(location_scale=p.location_scale, threshold_scale=p.threshold_scale)
        else:
            out["item_concentration"] = p.item_concentration
        return out

    def n_params(self) -> int:
        """Free parameters, counted as for the EM engine (for BIC at the EM fit)."""
        k = self.k
        if self.ordinal:
            return (k - 1) + k * self.J + int((self.ncat - 2).sum())
        return (k - 1) + k * int((self.ncat - 1).sum())

    def data_for_hash(self) -> np.ndarray:
        return np.where(self.codes >= 0, self.codes, np.nan).astype(float)

    # ------------------------------------------------------------------ starting values
    def em_start(self, seed: int, n_init: int) -> Any:
        """The EM latent class fit whose solution starts the chains and labels the draws."""
        from latentseg.models.lca import fit_lca

        from latentseg.models.bayes._survey import em_weight_kwargs

        measurement = "ordinal" if self.ordinal else "categorical"
        return fit_lca(self.data, self.k, measurement=measurement, n_init=n_init, random_seed=seed,
                       **em_weight_kwargs(fit_lca, self.sample_weight))

    def _flat_probs(self, padded: np.ndarray) -> np.ndarray:
        """(..., k, J, Cmax) NaN-padded -> (..., k, C) item blocks side by side."""
        return np.concatenate([padded[..., i, : self.ncat[i]] for i in range(self.J)], axis=-1)

    def _padded(self, flat: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(flat.shape[:-1] + (self.J, self.cmax), fill)
        for i, (o, c) in enumerate(zip(self.offsets, self.ncat)):
            out[..., i, :c] = flat[..., o : o + c]
        return out

    def _normalise_blocks(self, p: np.ndarray) -> np.ndarray:
        tot = p @ self.block  # (..., J)
        return p / (tot @ self.block.T)

    def start_params(self, em: Any) -> dict[str, np.ndarray]:
        """EM estimates as constrained parameters (segment order of the EM result)."""
        w = np.clip(np.asarray(em.params["weights"], float), 1e-6, None)
        w = w / w.sum()
        raw = np.nan_to_num(self._flat_probs(np.asarray(em.params["probs"], float)), nan=0.0)
        if self.ordinal:
            if "locations" in em.params and "thresholds" in em.shared_params:
                b = np.asarray(em.params["locations"], float)
                tau = np.nan_to_num(np.asarray(em.shared_params["thresholds"], float), nan=0.0)
                for i, c in enumerate(self.ncat):  # same model; move the thresholds to sum zero
                    shift = tau[i, : c - 1].mean()
                    tau[i, : c - 1] -= shift
                    b[:, i] -= shift
            else:
                b, tau = self._ordinal_from_probs(self._normalise_blocks(np.clip(raw, 1e-300, None)))
            return {"weights": w, "locations": b, "thresholds": tau, "probs": np.exp(self._ordinal_logprobs(b, tau))}
        probs = self._normalise_blocks(np.clip(raw, _PROB_FLOOR, None))
        return {"weights": w, "probs": probs}

    def _ordinal_from_probs(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Locations (k, J) and zero-sum thresholds (J, Cmax - 1) whose adjacent-category logits
        best match ``probs`` (exact when the probabilities come from the same model)."""
        k = probs.shape[0]
        b = np.zeros((k, self.J))
        tau = np.zeros((self.J, self.cmax - 1))
        lp = np.log(probs)
        for i, (o, c) in enumerate(zip(self.offsets, self.ncat)):
            alog = lp[:, o + 1 : o + c] - lp[:, o : o + c - 1]  # (k, c-1) = b - tau_l
            b[:, i] = alog.mean(axis=1)
            t = (b[:, i : i + 1] - alog).mean(axis=0)
            tau[i, : c - 1] = t - t.mean()
        return b, tau

    def _ordinal_logprobs(self, b: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """log P (..., k, C) from locations (..., k, J) and full thresholds (..., J, Cmax - 1)."""
        lead = b.shape[:-2]
        out = np.empty(lead + (b.shape[-2], self.C))
        for i, (o, c) in enumerate(zip(self.offsets, self.ncat)):
            m = np.arange(c)
            cum = np.concatenate([np.zeros(lead + (1,)), np.cumsum(tau[..., i, : c - 1], axis=-1)], axis=-1)  # (..., c)
            eta = m * b[..., :, i : i + 1] - cum[..., None, :]
            eta -= eta.max(axis=-1, keepdims=True)
            out[..., o : o + c] = eta - np.log(np.exp(eta).sum(axis=-1, keepdims=True))
        return out

    def theta_from_params(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """Unconstrained kernel vector from constrained parameters."""
        y = simplex_coords(p["weights"])
        if self.ordinal:
            tau = p["thresholds"]
            free = np.concatenate([tau[i, : c - 2] for i, c in enumerate(self.ncat)]) if self.n_free_tau else np.zeros(0)
            return np.concatenate([y, p["locations"].ravel(), free])
        probs = p["probs"]
        blocks = [simplex_coords(probs[j, o : o + c]) for j in range(self.k) for o, c in zip(self.offsets, self.ncat)]
        return np.concatenate([y, *blocks])

    def jitter(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A chain's start: the EM solution moved a little (sd 0.05; 0.02 on thresholds)."""
        step = np.full(theta.size, 0.05)
        if self.ordinal:
            step[self.k - 1 + self.k * self.J :] = 0.02
        return theta + step * rng.standard_normal(theta.size)

    def jitter_params(self, p: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.params_from_theta(self.jitter(self.theta_from_params(p), rng))

    # ------------------------------------------------------------------ log density
    def kernel(self) -> Any:
        """``logp(theta, grad) -> float``, the numba log posterior with the data bound."""
        from latentseg.models.bayes._kernels import lca_categorical_logp, lca_ordinal_logp

        Y, off, nc, k = self.Y, self.offsets, self.ncat, self.k
        pr = self.priors
        alpha = float(pr.concentration)
        wt = self.sample_weight
        if self.ordinal:
            fo = self.free_offsets
            sb, st = float(pr.location_scale), float(pr.threshold_scale)

            def logp(theta: np.ndarray, grad: np.ndarray) -> float:
                return lca_ordinal_logp(theta, Y, off, nc, fo, k, alpha, sb, st, grad)

            def logp_weighted(theta: np.ndarray, grad: np.ndarray) -> float:
                return lca_ordinal_logp(theta, Y, off, nc, fo, k, alpha, sb, st, grad, wt)

            return logp if wt is None else logp_weighted
        beta = float(pr.item_concentration)

        def logp_cat(theta: np.ndarray, grad: np.ndarray) -> float:
            return lca_categorical_logp(theta, Y, off, nc, k, alpha, beta, grad)

        def logp_cat_weighted(theta: np.ndarray, grad: np.ndarray) -> float:
            return lca_categorical_logp(theta, Y, off, nc, k, alpha, beta, grad, wt)

        return logp_cat if wt is None else logp_cat_weighted

    def c_kernel(self) -> tuple[str, np.ndarray]:
        """Name and data buffer of the C version of :meth:`kernel` (for nutpie)."""
        from latentseg.models.bayes._kernels import pack_lca

        pr = self.priors
        return LatentClassFamily.c_kernel_name, pack_lca(self.Y, self.offsets, self.ncat, self.free_offsets, self.k, float(pr.concentration),
                               float(pr.item_concentration), float(pr.location_scale), float(pr.threshold_scale),
                               self.ordinal, wt=self.sample_weight)

    def params_from_theta(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Constrained draws from kernel draws ``theta`` (..., n_free)."""
        k, J = self.k, self.J
        lead = theta.shape[:-1]
        a = k - 1
        w = simplex_probs(theta[..., :a])
        if self.ordinal:
            b = theta[..., a : a + k * J].reshape(lead + (k, J))
            free = theta[..., a + k * J :]
            tau = np.zeros(lead + (J, self.cmax - 1))
            for i, c in enumerate(self.ncat):
                f = free[..., self.free_offsets[i] : self.free_offsets[i] + c - 2]
                tau[..., i, : c - 2] = f
                tau[..., i, c - 2] = -f.sum(axis=-1)
            return {"weights": w, "probs": np.exp(self._ordinal_logprobs(b, tau)), "locations": b, "thresholds": tau}
        coords = theta[..., a:].reshape(lead + (k, self.C - J))
        probs = np.empty(lead + (k, self.C))
        pos = 0
        for o, c in zip(self.offsets, self.ncat):
            probs[..., o : o + c] = simplex_probs(coords[..., pos : pos + c - 1])
            pos += c - 1
        return {"weights": w, "probs": probs}

    # ------------------------------------------------------------------ PyMC
    def pymc_model(self) -> Any:
        """The PyMC model (same priors and likelihood as the kernel; classes marginalised by a
        hand-written log-sum-exp in a ``Potential``).

        Free variables: ``weights`` (k,); ``probs_c<m>`` (k, items with m categories, m) for each
        number of categories m (categorical), or ``locations`` (k, J) and ``thresholds_free``
        (sum_i (C_i - 2),) (ordinal).
        """
        return pymc_mixture_model(self)

    def pymc_components(self) -> Any:
        """Inside an open PyMC model (coords ``segment`` and ``indicator``): the classes' free
        variables (``probs_c<m>``, or ``locations`` and ``thresholds_free``; priors as the
        kernel's) and every respondent's log likelihood in every class, a tensor (n, k).
        :meth:`pymc_model` mixes it with ``weights``; the Bayesian one-step covariate model with
        its multinomial logit."""
        import pymc as pm
        import pytensor.tensor as pt

        k, J, C = self.k, self.J, self.C
        pr = self.priors
        if self.ordinal:
            b = pm.Normal("locations", mu=np.float64(0.0), sigma=np.float64(pr.location_scale), dims=("segment", "indicator"))
            nt = J * (self.cmax - 1)
            A = np.zeros((nt, max(self.n_free_tau, 1)))
            for i, c in enumerate(self.ncat):
                for l in range(c - 2):
                    A[i * (self.cmax - 1) + l, self.free_offsets[i] + l] = 1.0
                    A[i * (self.cmax - 1) + c - 2, self.free_offsets[i] + l] = -1.0
            if self.n_free_tau:
                tf = pm.Normal("thresholds_free", mu=np.float64(0.0), sigma=np.float64(pr.threshold_scale), shape=self.n_free_tau)
                tau = pt.dot(pt.as_tensor(A), tf)
            else:
                tau = pt.zeros(nt)
            last = np.array([i * (self.cmax - 1) + c - 2 for i, c in enumerate(self.ncat)])
            # the derived last threshold of each item gets the same Normal(0, threshold_scale) term
            pm.Potential(
                "thresholds_last_prior",
                pt.sum(-0.5 * pt.sqr(tau[last] / pr.threshold_scale)) - J * (math.log(pr.threshold_scale) + _HALF_LOG_2PI),
            )
            Mb = np.zeros((J, C))
            Mt = np.zeros((nt, C))
            for i, (o, c) in enumerate(zip(self.offsets, self.ncat)):
                for m in range(c):
                    Mb[i, o + m] = m
                    for l in range(m):
                        Mt[i * (self.cmax - 1) + l, o + m] = -1.0
            eta = pt.dot(b, pt.as_tensor(Mb)) + pt.dot(tau, pt.as_tensor(Mt))[None, :]
            eta = eta - pt.max(eta, axis=1, keepdims=True)
            norm = pt.log(pt.dot(pt.dot(pt.exp(eta), pt.as_tensor(self.block)), pt.as_tensor(self.block.T)))
            logp = eta - norm
        else:
            parts: dict[int, Any] = {}
            for m, items in self._category_groups().items():
                var = pm.Dirichlet(
                    f"probs_c{m}", a=np.full(m, pr.item_concentration, dtype=np.float64), shape=(k, len(items), m)
                )
                for q, i in enumerate(items):
                    parts[i] = var[:, q, :]
            logp = pt.log(pt.concatenate([parts[i] for i in range(J)], axis=1))
        return pt.dot(pt.as_tensor(self.Y), logp.T)

    def pymc_initvals(self, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.k > 1:
            out["weights"] = p["weights"]
        if self.ordinal:
            out["locations"] = p["locations"]
            if self.n_free_tau:
                out["thresholds_free"] = self.theta_from_params(p)[self.k - 1 + self.k * self.J :]
        else:
            for m, items in self._category_groups().items():
                out[f"probs_c{m}"] = np.stack([p["probs"][:, self.offsets[i] : self.offsets[i] + m] for i in items], axis=1)
        return out

    def _category_groups(self) -> dict[int, list[int]]:
        """Items grouped by their number of categories (one Dirichlet variable per group)."""
        groups: dict[int, list[int]] = {}
        for i, c in enumerate(self.ncat):
            groups.setdefault(int(c), []).append(i)
        return groups

    def params_from_pymc(self, posterior: Any) -> dict[str, np.ndarray]:
        if self.ordinal:
            b = np.asarray(posterior["locations"].values, float)
            lead = b.shape[:-2]
            parts = [b.reshape(lead + (-1,))]
            if self.n_free_tau:
                parts.append(np.asarray(posterior["thresholds_free"].values, float))
            w = np.asarray(posterior["weights"].values, float) if self.k > 1 else np.ones(lead + (1,))
            return self.params_from_theta(np.concatenate([simplex_coords(w), *parts], axis=-1))
        probs = None
        for m, items in self._category_groups().items():
            var = np.asarray(posterior[f"probs_c{m}"].values, float)  # (..., k, n_items, m)
            if probs is None:
                probs = np.empty(var.shape[:-2] + (self.C,))
            for q, i in enumerate(items):
                probs[..., self.offsets[i] : self.offsets[i] + m] = var[..., q, :]
        assert probs is not None
        lead = probs.shape[:-2]
        w = np.asarray(posterior["weights"].values, float) if self.k > 1 else np.ones(lead + (1,))
        return {"weights": w, "probs": probs}

    def pymc_point(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """The PyMC model's unconstrained point equal to kernel vector ``theta``, keys in layout order (for tests)."""
        k, J = self.k, self.J
        a = k - 1
        out: dict[str, np.ndarray] = {}
        if k > 1:
            out["weights_simplex__"] = theta[:a]
        if self.ordinal:
            out["locations"] = theta[a : a + k * J].reshape(k, J)
            if self.n_free_tau:
                out["thresholds_free"] = theta[a + k * J :]
            return out
        coords = theta[a:].reshape(k, self.C - J)
        starts = np.r_[0, np.cumsum(self.ncat - 1)[:-1]]
        for m, items in self._category_groups().items():
            out[f"probs_c{m}_simplex__"] = np.stack([coords[:, starts[i] : starts[i] + m - 1] for i in items], axis=1)
        return out

    # ------------------------------------------------------------------ summaries
    def log_component(self, p: dict[str, np.ndarray], rows: slice) -> np.ndarray:
        """``log P(y_n | class j)`` for draws (S, ...) and respondents ``rows``: (S, B, k)."""
        logp = np.log(np.clip(p["probs"], 1e-300, None))  # (S, k, C)
        return np.matmul(self.Y[rows][None], np.swapaxes(logp, 1, 2))

    def block_size(self, n_draws: int) -> int:
        per = n_draws * self.k * 3 + 1
        return int(max(1, min(self.n, 4_000_000 // per)))

    def relabel_cost(self, p: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        """(S, k, k): squared distance between item-response probabilities."""
        a = p["probs"][:, :, None, :]
        b = ref["probs"][None, None, :, :]
        return np.square(a - b).sum(axis=-1)

    def location_summary(self, p: dict[str, np.ndarray]) -> np.ndarray:
        return p["probs"]

    def centers(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """Expected category value (the numeric level, or the 0-based code) per class and item."""
        return (p["probs"] * self.values) @ self.block

    def duplicates(self, mean_params: dict[str, np.ndarray]) -> list[tuple[int, int]]:
        """Pairs of classes (0-based) whose response distributions differ by less than 0.05 in
        total variation on average over the items."""
        pr = mean_params["probs"]
        out = []
        for a in range(self.k):
            for b in range(a + 1, self.k):
                tv = 0.5 * (np.abs(pr[a] - pr[b]) @ self.block)
                if float(tv.mean()) < 0.05:
                    out.append((a, b))
        return out

    def coords(self) -> dict[str, Any]:
        return {
            "indicator": list(self.feature_names),
            "category": np.arange(self.cmax),
            "threshold": np.arange(1, self.cmax),
            "cell": np.arange(self.C),
        }

    def diagnostic_variables(self, p: dict[str, np.ndarray]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        out = {"weights": (("segment",), p["weights"]), "probs": (("segment", "cell"), p["probs"])}
        if self.ordinal:
            out["locations"] = (("segment", "indicator"), p["locations"])
            out["thresholds"] = (("indicator", "threshold"), p["thresholds"])
        return out

    def posterior_variables(self, p: dict[str, np.ndarray]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        out = {
            "weights": (("segment",), p["weights"]),
            "probs": (("segment", "indicator", "category"), self._padded(p["probs"], 0.0)),
        }
        if self.ordinal:
            out["locations"] = (("segment", "indicator"), p["locations"])
            out["thresholds"] = (("indicator", "threshold"), p["thresholds"])
        return out

    def params_from_result(self, result: Any, max_draws: int) -> dict[str, np.ndarray]:
        post = None if result.posterior is None else result.posterior["posterior"]
        if post is None:
            probs = self._flat_probs(np.nan_to_num(np.asarray(result.params["probs"], float), nan=0.0))
            return {"weights": np.asarray(result.params["weights"], float)[None], "probs": probs[None]}
        w = np.asarray(post["weights"].values, float)
        C, S = w.shape[:2]
        idx = np.unique(np.linspace(0, C * S - 1, min(C * S, max_draws)).astype(int))
        probs = np.asarray(post["probs"].values, float)
        probs = probs.reshape((C * S,) + probs.shape[2:])[idx]
        return {"weights": w.reshape(C * S, -1)[idx], "probs": self._flat_probs(probs)}

    def result_params(self, mean_params: dict[str, np.ndarray], p: dict[str, np.ndarray]) -> tuple[dict, dict]:
        params = {"weights": mean_params["weights"], "probs": self._padded(mean_params["probs"], np.nan)}
        shared: dict[str, np.ndarray] = {}
        if self.ordinal:
            params["locations"] = mean_params["locations"]
            thr = p["thresholds"].mean(axis=(0, 1)).copy()
            for i, c in enumerate(self.ncat):
                thr[i, c - 1 :] = np.nan
            shared["thresholds"] = thr
        return params, shared

    def extras(self, p: dict[str, np.ndarray], prob: float) -> dict[str, Any]:
        """``item_probs`` (tidy, posterior mean and 95% interval) and ``categories``."""
        from latentseg.prepare.encoding import categories_frame

        probs = p["probs"]  # (T, k, C)
        lo, hi = np.quantile(probs, [(1 - prob) / 2, 1 - (1 - prob) / 2], axis=0)
        mean = probs.mean(axis=0)
        keys = self.enc.keys if self.enc is not None else [tuple(str(m) for m in range(c)) for c in self.ncat]
        rows = []
        for j in range(self.k):
            for cell in range(self.C):
                i = self.item_of[cell]
                m = self.level_of[cell]
                rows.append((j + 1, self.feature_names[i], keys[i][m], mean[j, cell], lo[j, cell], hi[j, cell]))
        out: dict[str, Any] = {
            "item_probs": pd.DataFrame(rows, columns=["segment", "item", "category", "probability", "lower", "upper"])
        }
        if self.enc is not None:
            out["categories"] = categories_frame(self.enc)
        return out

    # ------------------------------------------------------------------ prior predictive
    def sample_prior(self, rng: np.random.Generator, draws: int) -> dict[str, np.ndarray]:
        k, J = self.k, self.J
        pr = self.priors
        out = {"weights": rng.dirichlet(np.full(k, pr.concentration), size=draws)}
        if self.ordinal:
            b = pr.location_scale * rng.standard_normal((draws, k, J))
            tau = np.zeros((draws, J, self.cmax - 1))
            for i, c in enumerate(self.ncat):
                t = pr.threshold_scale * rng.standard_normal((draws, c - 1))
                tau[:, i, : c - 1] = t - t.mean(axis=1, keepdims=True)
            out.update(locations=b, thresholds=tau, probs=np.exp(self._ordinal_logprobs(b, tau)))
        else:
            gi = rng.gamma(pr.item_concentration, 1.0, size=(draws, k, self.C))
            out["probs"] = self._normalise_blocks(gi)
        return out

    def simulate(self, p: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Category codes (draws, n, J) simulated from parameter draws (draws, ...)."""
        draws = p["weights"].shape[0]
        out = np.empty((draws, self.n, self.J), dtype=np.int64)
        for s in range(draws):
            seg = rng.choice(self.k, size=self.n, p=p["weights"][s])
            for i, (o, c) in enumerate(zip(self.offsets, self.ncat)):
                cum = np.cumsum(p["probs"][s][:, o : o + c], axis=1)[seg]  # (n, c)
                u = rng.random(self.n)[:, None]
                out[s, :, i] = np.minimum((u > cum).sum(axis=1), c - 1)
        return out

    def observed_matrix(self) -> np.ndarray:
        return self.codes

    def observed_variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """The data the model was fitted on, for the posterior tree's ``observed_data`` group:
        ``responses`` (respondent, indicator), each answer's 0-based category code (the order of
        ``extras["categories"]``), -1 where missing."""
        return {"responses": (("respondent", "indicator"), np.array(self.codes, dtype=np.int64))}

    def predictive_statistics(self, observed: np.ndarray, sims: np.ndarray) -> pd.DataFrame:
        """Observed share of each category of each item against its prior predictive distribution."""
        rows = []
        keys = self.enc.keys if self.enc is not None else [tuple(str(m) for m in range(c)) for c in self.ncat]
        for i, c in enumerate(self.ncat):
            seen = observed[:, i] >= 0
            for m in range(c):
                obs = float((observed[seen, i] == m).mean())
                sim = (sims[:, :, i] == m).mean(axis=1)
                lo, med, hi = np.quantile(sim, [0.025, 0.5, 0.975])
                rows.append(("share", f"{self.feature_names[i]}={keys[i][m]}", obs, lo, med, hi, float((sim < obs).mean())))
        return pd.DataFrame(
            rows, columns=["statistic", "feature", "observed", "prior_lower", "prior_median", "prior_upper", "percentile"]
        )
