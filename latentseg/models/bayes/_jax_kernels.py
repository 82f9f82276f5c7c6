"""The diagonal Gaussian mixture's log posterior in JAX, and NumPyro's NUTS on it.

``sampler="numpyro"`` for ``bayes-gmm`` (diagonal covariance) samples with NumPyro's NUTS on
:func:`gmm_diag_logp_jax`, the same log density as the numba kernel
:func:`latentseg.models.bayes._kernels.gmm_diag_logp` (same parameter layout, priors and simplex
Jacobian; ``tests/test_bayes_jax.py`` checks the value and the gradient against it to 1e-10),
without PyMC or PyTensor: the gradient comes from ``jax.grad``. It is meant for large N on a GPU:
per evaluation one (N, m) @ (m, k) product, a log-sum-exp over the k segments, and the reverse
pass (one more (k, N) @ (N, m) product).

Two choices matter for large N:

* **float64.** JAX computes in float32 unless ``jax_enable_x64`` is set; in our notes float32
  runs at N = 10^6 did not converge (the log density, a sum of 10^6 terms, loses the precision
  the leapfrog integrator needs). The functions here switch ``jax_enable_x64`` on for the whole
  process the first time they run (JAX has no per-call setting).
* **The data are arguments of the compiled program, not constants in it.** An array a jitted
  function closes over is embedded in the compiled program: measured here with JAX 0.11.2 at
  N = 10^6 x 40 (float64), the lowered program held the 320 MB array as text and compiling the
  value and gradient took 3.3 s instead of 0.2 s, with a second copy of the data on the device.
  So the data go to the device once (``jnp.asarray``) and reach the sampler as model arguments:
  NumPyro's NUTS runs on a model whose only latent is an improper flat ``theta`` plus a
  ``numpyro.factor`` with the log density (potential energy exactly ``-logp``, as with
  ``NUTS(potential_fn=...)``), and ``MCMC(jit_model_args=True)`` passes the data through the
  compiled loop as arguments.

Layout of ``theta`` (see :mod:`latentseg.models.bayes._kernels`): the k - 1 simplex coordinates
of the weights, then ``mu`` (k, d) row-major (centred units), then ``log sigma`` (k, d).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from latentseg.errors import ConfigError

__all__ = ["gmm_diag_logp_jax", "sample_numpyro", "CHAIN_METHODS"]

#: NumPyro's ways of running several chains
CHAIN_METHODS = ("vectorized", "parallel", "sequential")
#: as the numba kernel: log sigma outside +-this is outside the support (log density -inf)
_LOGSD_LIMIT = 30.0
_LOG_2PI = math.log(2.0 * math.pi)


#: what to do when JAX / NumPyro are missing
MISSING_JAX = (
    "sampler='numpyro' needs JAX and NumPyro, which are not installed; install the extra with "
    "pip install 'latentseg[jax]', or use sampler='nutpie'."
)


def _jax() -> tuple[Any, Any]:
    """``(jax, jax.numpy)`` with 64-bit floats switched on; ConfigError when JAX is missing."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise ConfigError(MISSING_JAX) from exc
    if not jax.config.read("jax_enable_x64"):
        jax.config.update("jax_enable_x64", True)
    return jax, jnp


def _numpyro() -> Any:
    try:
        import numpyro
    except ImportError as exc:
        raise ConfigError(MISSING_JAX) from exc
    return numpyro


def gmm_diag_logp_jax(
    theta: Any,
    F: Any,
    cst: Any,
    k: int,
    d: int,
    alpha: float,
    mean_loc: Any,
    mean_scale: Any,
    logsd_loc: Any,
    logsd_scale: float,
    ks: int = 0,
) -> Any:
    """Log posterior density of the diagonal Gaussian mixture (segments marginalised), in JAX.

    The same function as :func:`latentseg.models.bayes._kernels.gmm_diag_logp` (without its
    ``grad`` argument: differentiate with ``jax.grad``). Traceable: call it inside ``jax.jit``
    with ``k`` and ``d`` static. Switches on ``jax_enable_x64`` for the process when called
    outside a trace (call it once, or call :func:`sample_numpyro`, before jitting it yourself).

    Parameters
    ----------
    theta : array, shape (k - 1 + k d + ks d,)
        Unconstrained parameters: simplex coordinates of the weights, ``mu`` (k, d) row-major
        (centred data units), ``log sigma`` (ks, d).
    F : array, shape (N, 2 d) or (N, 3 d)
        ``[x^2, x]`` of the centred data, or ``[x^2, x, o]`` with ``o`` the 0/1 observed
        indicator when values are missing (``x`` is 0 where missing).
    cst : array, shape (N,)
        ``-0.5 log(2 pi)`` times the number of observed values of each respondent.
    k, d : int
        Segments and features (Python ints: they fix the shapes).
    alpha : float
        Dirichlet concentration of the weights.
    mean_loc, mean_scale : array, shape (d,)
        ``mu_jd ~ Normal(mean_loc_d, mean_scale_d)``.
    logsd_loc : array, shape (d,)
        ``log sigma_jd ~ Normal(logsd_loc_d, logsd_scale)``.
    logsd_scale : float
    ks : int, default 0
        Rows of sds: ``k`` (or 0, meaning ``k``) for segment-specific sds (mclust VVI), 1 for sds
        shared by the segments (EEI). Static, like ``k``.

    Returns
    -------
    scalar array
        ``log p(theta | data)`` up to the normalising constant of the posterior: log prior
        (Dirichlet with the simplex log-Jacobian, normal priors) plus
        ``sum_n [cst_n + logsumexp_j (log w_j + L_nj)]``; ``-inf`` when some ``|log sigma|``
        is 30 or more (the numba kernel's support), with a zero gradient there.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[-1.0], [0.0], [1.0]])
    >>> F = np.concatenate([x * x, x], axis=1)
    >>> cst = np.full(3, -0.5 * np.log(2 * np.pi))
    >>> theta = np.array([0.0, 0.0])  # k = 1, d = 1: mu = 0, sigma = 1
    >>> lp = gmm_diag_logp_jax(theta, F, cst, 1, 1, 1.0, np.zeros(1), np.ones(1), np.zeros(1), 1.0)
    >>> round(float(lp), 6)  # sum of N(x | 0, 1) + N(0 | 0, 1) prior on mu + N(0 | 0, 1) on log sigma
    -5.594693
    """
    jax, jnp = _jax()
    theta = jnp.asarray(theta)
    F = jnp.asarray(F)
    a = k - 1
    kd = k * d
    ks = k if ks <= 0 else ks
    sd_n = ks * d
    y = theta[:a]
    mu = theta[a : a + kd].reshape(k, d)
    ls_raw = theta[a + kd : a + kd + sd_n].reshape(ks, d)
    inside = jnp.all(jnp.abs(ls_raw) < _LOGSD_LIMIT)
    # outside the support the value is -inf; evaluating at a harmless point instead keeps the
    # gradient (which jnp.where also propagates through the branch not taken) finite, zero
    ls = jnp.where(inside, ls_raw, 0.0)

    u = jnp.concatenate([y, -jnp.sum(y, keepdims=True)])
    logw = jax.nn.log_softmax(u)
    inv = jnp.broadcast_to(jnp.exp(-2.0 * ls), (k, d))  # 1 / sigma^2, per segment
    quad = jnp.concatenate([(-0.5 * inv).T, (mu * inv).T], axis=0)  # (2d, k)
    const = -0.5 * mu * mu * inv - jnp.broadcast_to(ls, (k, d))  # (k, d): the terms not multiplied by data
    if F.shape[1] == 2 * d:  # complete data: every value observed
        L = F @ quad + (jnp.sum(const, axis=1) + logw)[None, :]
    else:
        L = F @ jnp.concatenate([quad, const.T], axis=0) + logw[None, :]
    loglik = jnp.sum(jax.nn.logsumexp(L, axis=1)) + jnp.sum(jnp.asarray(cst))

    # Dirichlet(alpha) on w with the simplex log-Jacobian (log k + sum_j log w_j)
    gammaln = jax.scipy.special.gammaln
    lp_w = gammaln(k * alpha) - k * gammaln(alpha) + math.log(k) + alpha * jnp.sum(logw)
    mean_loc = jnp.asarray(mean_loc)
    mean_scale = jnp.asarray(mean_scale)
    logsd_loc = jnp.asarray(logsd_loc)
    z_mu = (mu - mean_loc[None, :]) / mean_scale[None, :]
    z_ls = (ls - logsd_loc[None, :]) / logsd_scale
    lp_prior = (
        -0.5 * jnp.sum(z_mu * z_mu)
        - k * jnp.sum(jnp.log(mean_scale))
        - 0.5 * jnp.sum(z_ls * z_ls)
        - sd_n * jnp.log(logsd_scale)
        - 0.5 * (kd + sd_n) * _LOG_2PI
    )
    lp = loglik + lp_w + lp_prior
    return jnp.where(inside, lp, -jnp.inf)


def _family_args(family: Any) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """Static settings and device arrays of the family's log density."""
    jax, jnp = _jax()
    alpha, mean_loc, mean_scale, logsd_loc, logsd_scale = family.kernel_priors()
    static = {"k": int(family.k), "d": int(family.d), "alpha": alpha, "logsd_scale": logsd_scale,
              "ks": int(family.sd_rows)}
    arrays = tuple(
        jax.device_put(jnp.asarray(np.ascontiguousarray(v, dtype=np.float64)))
        for v in (family.F, family.cst, mean_loc, mean_scale, logsd_loc)
    )
    return static, arrays


def _chain_method(jax: Any, chain_method: str | None, chains: int) -> str:
    if chain_method is None:
        if jax.default_backend() != "cpu":
            return "vectorized"
        return "parallel" if jax.local_device_count() >= chains else "sequential"
    if chain_method not in CHAIN_METHODS:
        raise ConfigError(
            f"The 'chain_method' parameter of sample_numpyro must be one of {', '.join(CHAIN_METHODS)}. "
            f"Got {chain_method!r} instead."
        )
    return chain_method


def sample_numpyro(
    family: Any,
    start_params: dict[str, np.ndarray],
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    target_accept: float,
    progressbar: bool,
    chain_method: str | None = None,
) -> dict[str, Any]:
    """NumPyro's NUTS on :func:`gmm_diag_logp_jax` for a diagonal Gaussian family.

    Every chain starts from ``family.jitter(family.theta_from_params(start_params), rng)`` with
    its own generator spawned from ``seed``; NUTS's random key comes from the same seed, so the
    same seed (and the same ``chain_method`` and device) gives the same draws, bit for bit.
    Diagonal mass matrix and step size adapted during the ``tune`` warm-up iterations (NumPyro's
    windowed adaptation), maximum tree depth 10.

    Parameters
    ----------
    family : GaussianFamily
        A diagonal-covariance :class:`~latentseg.models.bayes.gmm.GaussianFamily`.
    start_params : dict of ndarray
        Constrained starting values (``weights`` (k,), ``means`` (k, d), ``sds`` (k, d)), e.g.
        ``family.start_params(em)``.
    draws, tune, chains : int
        Kept draws, warm-up iterations and chains.
    seed : int or None
    target_accept : float
        NUTS target acceptance probability.
    progressbar : bool
        NumPyro's progress bar (on stderr).
    chain_method : {"vectorized", "parallel", "sequential"}, optional
        Default: ``"vectorized"`` (all chains in one program) on a GPU or TPU; on CPU
        ``"parallel"`` when JAX sees at least ``chains`` devices (see
        ``numpyro.set_host_device_count``), else ``"sequential"``.

    Returns
    -------
    dict
        ``params``: ``family.params_from_theta`` of the draws, arrays (chains, draws, ...);
        ``theta`` (chains, draws, n_free) the raw draws; ``diverging`` (chains, draws) bool;
        ``energy`` (chains, draws) the Hamiltonian; ``tree_depth`` (chains, draws),
        ``floor(log2(num_steps)) + 1`` from NumPyro's leapfrog step counts ``num_steps``
        (chains, draws) int (gradient evaluations per draw); ``step_size``
        (chains,) after adaptation; ``info``: ``{"engine": "numpyro (JAX log density, <platform>)"}``.

    Raises
    ------
    ConfigError
        JAX / NumPyro missing, a full-covariance family, or an unknown ``chain_method``.

    Examples
    --------
    >>> from latentseg.models.bayes.gmm import GaussianFamily, GMMPriors
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(5, 1, (40, 2))]
    >>> fam = GaussianFamily(X, 2, "diag", GMMPriors())
    >>> start = fam.start_params(fam.em_start(1, 3))
    >>> out = sample_numpyro(fam, start, draws=200, tune=200, chains=1, seed=1, target_accept=0.8,
    ...                      progressbar=False)  # doctest: +SKIP
    >>> out["params"]["weights"].shape, out["params"]["weights"].mean(axis=(0, 1)).round(1).tolist()  # doctest: +SKIP
    ((1, 200, 2), [0.6, 0.4])
    """
    if getattr(family, "covariance", None) not in ("diag", "EEI", "auto"):  # "auto": sd_rows says to call em_start
        raise ConfigError("sample_numpyro covers the diagonal Gaussian mixtures only (covariance='diag' or 'EEI').")
    jax, jnp = _jax()
    numpyro = _numpyro()
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    method = _chain_method(jax, chain_method, chains)
    static, arrays = _family_args(family)
    theta0 = np.asarray(family.theta_from_params(start_params), dtype=np.float64)
    n_free = theta0.size

    seq = np.random.SeedSequence(seed)
    init_seq, key_seq = seq.spawn(2)
    inits = np.stack([family.jitter(theta0, np.random.default_rng(s)) for s in init_seq.spawn(chains)])
    key = jax.random.PRNGKey(int(key_seq.generate_state(1, dtype=np.uint32)[0]))

    def model(F: Any, cst: Any, mean_loc: Any, mean_scale: Any, logsd_loc: Any) -> None:
        # a flat improper prior on theta: the potential energy is exactly -logp
        theta = numpyro.sample("theta", dist.ImproperUniform(dist.constraints.real_vector, (), (n_free,)))
        numpyro.factor("logp", gmm_diag_logp_jax(theta, F, cst, static["k"], static["d"], static["alpha"],
                                                 mean_loc, mean_scale, logsd_loc, static["logsd_scale"],
                                                 static["ks"]))

    kernel = NUTS(model, target_accept_prob=float(target_accept))
    mcmc = MCMC(
        kernel,
        num_warmup=int(tune),
        num_samples=int(draws),
        num_chains=int(chains),
        chain_method=method,
        progress_bar=bool(progressbar),
        jit_model_args=True,
    )
    init = {"theta": jnp.asarray(inits if chains > 1 else inits[0])}
    mcmc.run(key, *arrays, init_params=init, extra_fields=("energy", "num_steps", "adapt_state.step_size"))
    theta = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"], dtype=np.float64)
    extra = {name: np.asarray(val) for name, val in mcmc.get_extra_fields(group_by_chain=True).items()}
    steps = extra["num_steps"].astype(np.float64)
    depth = np.where(steps > 0, np.floor(np.log2(np.maximum(steps, 1.0))) + 1.0, 0.0)
    platform = jax.devices()[0].platform
    return {
        "params": family.params_from_theta(theta),
        "theta": theta,
        "diverging": extra["diverging"].astype(bool),
        "energy": extra["energy"].astype(np.float64),
        "tree_depth": depth,
        "num_steps": extra["num_steps"].astype(np.int64),
        "step_size": extra["adapt_state.step_size"][:, -1].astype(np.float64),
        "info": {"engine": f"numpyro (JAX log density, {platform})"},
    }
