"""The family registry: the one place that names a model family and says what it is.

Every other module asks this registry: which data a family takes (opportunity scores or
opportunity levels), whether it is Bayesian, which engine fits it, which options it accepts and
how each comes from the ``[model]`` table of the config, the interval its shares carry, the
criterion that chooses its k, and whether subsample stability and the bootstrap likelihood-ratio
test apply. Adding a family is one entry in :data:`FAMILIES` (and its engine module).

Nothing here imports an engine: :meth:`Family.fit_function` imports it on first use, so the
registry is cheap to import (the CLI's ``--help`` reads the family names from it).

Examples
--------
>>> from latentseg.models.families import FAMILIES, family
>>> list(FAMILIES)
['kmeans', 'gmm', 'lca', 'bayes-gmm', 'bayes-lca', 'rating-lca', 'bayes-rating-lca']
>>> family("lca").data, family("bayes-gmm").bayesian, family("rating-lca").data
('levels', True, 'ratings')
>>> family("bayes-gmm").options_from_config({"model": {"covariance": "EEI", "draws": 500, "tune": 500,
...     "chains": 2, "sampler": "nutpie", "n_init": 10}}).options["covariance"]
'EEI'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from latentseg.errors import ConfigError

__all__ = [
    "Family",
    "Option",
    "EngineOptions",
    "FAMILIES",
    "NAMES",
    "DATA_KINDS",
    "family",
    "check_names",
    "BASELINE",
    "LATENT_CLASS",
    "DEMO",
    "bayes_gmm_covariance",
    "MCMC_OPTIONS",
    "DEFAULT_FAMILY",
    "DEFAULT_SWEEP",
    "KMEANS",
    "GMM",
    "LCA",
    "BAYES_GMM",
    "BAYES_LCA",
    "RATING_LCA",
    "BAYES_RATING_LCA",
]

#: What a family is fitted on: ``"scores"`` (numeric: opportunity scores, their factors, or any
#: numeric table), ``"levels"`` (categorical: per-outcome opportunity levels, or any
#: categorical table) or ``"ratings"`` (a survey's raw importance and satisfaction ratings, each
#: a category of its scale: :func:`latentseg.prepare.ratings.rating_frame`).
DATA_KINDS = ("scores", "levels", "ratings")


@dataclass(frozen=True)
class Option:
    """One engine option of a family.

    Attributes
    ----------
    name : str
        The engine's keyword argument (``fit(data, family, k, name=value)``).
    config_key : str or None
        The ``[model]`` key it comes from; ``None``: accepted when given explicitly (the Python
        API, ``latentseg fit --name``) but left at the engine's default otherwise.
    translate : callable or None
        ``translate(config value) -> (engine value or None, note or "")``: a config value the
        engine spells differently (``None`` keeps the engine's default; the note says why).
    """

    name: str
    config_key: str | None = None
    translate: Callable[[Any], tuple[Any, str]] | None = None


@dataclass(frozen=True)
class EngineOptions:
    """A family's engine options from a config, and the notes on any value it could not take."""

    options: dict[str, Any]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes
    ----------
    name : str
        The family's name everywhere (config, CLI, results, saved models).
    title : str
        In words, for reports.
    data : {"scores", "levels", "ratings"}
        The data it takes (:data:`DATA_KINDS`).
    bayesian : bool
        Fitted by MCMC (PyMC); shares carry posterior credible intervals.
    module, function : str
        The engine: ``module.function(data, k, random_seed=..., **options)``; ``module`` also
        defines ``predict_proba(result, data)``.
    options : tuple of Option
        The options it accepts and where each comes from.
    interval : str
        How its share intervals are made (``"Wilson"``, ``"posterior credible"`` ...).
    criterion : {"elbow", "bic", "loo"}
        What chooses its k in a sweep.
    stability : bool
        Subsample stability is measured in a sweep (each refit of a Bayesian family is an MCMC
        run, so they have none by default).
    lrt : bool
        The bootstrap likelihood-ratio test (k - 1 against k) applies (EM families).
    complete_data : bool
        The engine cannot use missing values: they are replaced by column means, with a note.
    seed_code : int
        The family's stream in a sweep's seed sequence (never renumber: seeds depend on it).
    color : str
        Its colour in figures.
    em_twin : str or None
        The EM family whose solution starts this family's sampler (a Bayesian family's EM twin):
        a sweep reads that family's fit at the same k to skip hopeless Bayesian fits
        (:func:`latentseg.choose.selection.hopeless_em_fit`).
    """

    name: str
    title: str
    data: str
    bayesian: bool
    module: str
    function: str
    options: tuple[Option, ...]
    interval: str
    criterion: str
    stability: bool
    lrt: bool
    complete_data: bool
    seed_code: int
    color: str
    aliases: tuple[str, ...] = field(default=())
    em_twin: str | None = None

    @property
    def categorical(self) -> bool:
        """Fitted on categorical indicators (``data == "levels"``)."""
        return self.data == "levels"

    @property
    def on_ratings(self) -> bool:
        """Fitted on a survey's raw ratings (``data == "ratings"``): its ``centers`` are segment
        opportunity scores implied by its rating distributions, with ``center_intervals``."""
        return self.data == "ratings"

    @property
    def option_names(self) -> tuple[str, ...]:
        """Every option the family accepts."""
        return tuple(o.name for o in self.options)

    def engine(self) -> Any:
        """The engine module (imported on first use)."""
        return importlib.import_module(self.module)

    def fit_function(self) -> Callable[..., Any]:
        """The engine's fit function."""
        return getattr(self.engine(), self.function)

    def options_from_config(self, cfg: Mapping[str, Mapping[str, Any]]) -> EngineOptions:
        """The engine options a merged config's ``[model]`` table sets for this family.

        Parameters
        ----------
        cfg : mapping
            A merged config (:func:`latentseg.config.merge_config`); only ``cfg["model"]`` is read.

        Returns
        -------
        EngineOptions
            ``options`` for the engine, and ``notes`` on configured values the family cannot take
            (it then keeps its default, and the note says so).

        Examples
        --------
        >>> from latentseg.config import merge_config
        >>> cfg = merge_config({"model": {"covariance": "EEE", "n_init": 4}})
        >>> family("gmm").options_from_config(cfg).options
        {'covariance': 'EEE', 'n_init': 4}
        >>> eo = family("bayes-gmm").options_from_config(cfg)
        >>> "covariance" in eo.options, eo.notes[0][:40]
        (False, "bayes-gmm has no 'EEE' covariance struct")
        """
        model = cfg["model"]
        opts: dict[str, Any] = {}
        notes: list[str] = []
        for opt in self.options:
            if opt.config_key is None or opt.config_key not in model:
                continue
            value = model[opt.config_key]
            if opt.translate is not None:
                value, note = opt.translate(value)
                if note:
                    notes.append(note)
                if value is None:
                    continue
            opts[opt.name] = value
        return EngineOptions(opts, tuple(notes))

    def check_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Explicit options (``None`` = not given) checked against what the family accepts.

        Raises
        ------
        ConfigError
            An option the family does not take, named as the CLI spells it.

        Examples
        --------
        >>> family("gmm").check_options({"draws": 100})
        Traceback (most recent call last):
        ...
        latentseg.errors.ConfigError: --draws is not an option of --model gmm; it takes --covariance, --n-init.
        """
        out: dict[str, Any] = {}
        for name, value in given.items():
            if value is None:
                continue
            if name not in self.option_names:
                takes = ", ".join("--" + o.replace("_", "-") for o in self.option_names)
                raise ConfigError(f"--{name.replace('_', '-')} is not an option of --model {self.name}; it takes {takes}.")
            out[name] = value
        return out


def bayes_gmm_covariance(value: Any) -> tuple[Any, str]:
    """``[model] covariance`` (any spelling the EM engine takes) as the Bayesian Gaussian
    mixture's structure: VVI, EEI, VVV or auto; for structures it does not have (EII, VII, EEE)
    it keeps its default (VVI), with a note that says so.

    Examples
    --------
    >>> bayes_gmm_covariance("VVI"), bayes_gmm_covariance("EEI"), bayes_gmm_covariance("auto")
    (('diag', ''), ('EEI', ''), ('auto', ''))
    >>> bayes_gmm_covariance("EII")[0] is None
    True
    """
    from latentseg.models.bayes.gmm import OPTIONS, covariance_option
    from latentseg.models.gmm import resolve_covariance

    try:
        return covariance_option(str(value).strip()), ""
    except ConfigError:  # a structure only the EM mixture has (an unknown spelling raises below)
        name = resolve_covariance(str(value).strip(), 2)
    return None, (
        f"{BAYES_GMM} has no {name!r} covariance structure ([model] covariance); it uses its default, VVI "
        f"(it has {', '.join(OPTIONS)} and auto)"
    )


#: The sampler options every Bayesian family takes (from ``[model]``).
MCMC_OPTIONS = ("draws", "tune", "chains", "sampler")
_MCMC = tuple(Option(name, name) for name in MCMC_OPTIONS)

#: The family names, for the few places that need one family in particular (its engine, a study
#: method, a role below); everything else iterates over :data:`FAMILIES`.
KMEANS, GMM, LCA, BAYES_GMM, BAYES_LCA = "kmeans", "gmm", "lca", "bayes-gmm", "bayes-lca"
RATING_LCA, BAYES_RATING_LCA = "rating-lca", "bayes-rating-lca"

#: The families, in sweep order. Never renumber ``seed_code``.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name=KMEANS,
            title="k-means",
            data="scores",
            bayesian=False,
            module="latentseg.models.kmeans",
            function="fit_kmeans",
            options=(Option("n_init", "n_init"),),
            interval="Wilson",
            criterion="elbow",
            stability=True,
            lrt=False,
            complete_data=True,
            seed_code=1,
            color="#1b9e77",
        ),
        Family(
            name=GMM,
            title="Gaussian mixture",
            data="scores",
            bayesian=False,
            module="latentseg.models.gmm",
            function="fit_gmm",
            options=(Option("covariance", "covariance"), Option("n_init", "n_init")),
            interval="Wilson",
            criterion="bic",
            stability=True,
            lrt=True,
            complete_data=False,
            seed_code=2,
            color="#d95f02",
        ),
        Family(
            name=LCA,
            title="latent class",
            data="levels",
            bayesian=False,
            module="latentseg.models.lca",
            function="fit_lca",
            options=(Option("n_init", "n_init"),),
            interval="Wilson",
            criterion="bic",
            stability=True,
            lrt=True,
            complete_data=False,
            seed_code=3,
            color="#7570b3",
        ),
        Family(
            name=BAYES_GMM,
            title="Bayesian Gaussian mixture",
            data="scores",
            bayesian=True,
            module="latentseg.models.bayes.engine",
            function="fit_bayes_gmm",
            options=(*_MCMC, Option("covariance", "covariance", bayes_gmm_covariance), Option("n_init")),
            interval="posterior credible",
            criterion="loo",
            stability=False,
            lrt=False,
            complete_data=False,
            seed_code=4,
            color="#e7298a",
            em_twin=GMM,
        ),
        Family(
            name=BAYES_LCA,
            title="Bayesian latent class",
            data="levels",
            bayesian=True,
            module="latentseg.models.bayes.engine",
            function="fit_bayes_lca",
            # n_init (the EM warm starts) stays at the engine's own default: the config's n_init
            # is for k-means and the EM fits
            options=(*_MCMC, Option("n_init")),
            interval="posterior credible",
            criterion="loo",
            stability=False,
            lrt=False,
            complete_data=False,
            seed_code=5,
            color="#66a61e",
            em_twin=LCA,
        ),
        Family(
            name=RATING_LCA,
            title="latent class on ratings",
            data="ratings",
            bayesian=False,
            module="latentseg.models.rating_lca",
            function="fit_rating_lca",
            options=(Option("n_init", "n_init"), Option("measurement"), Option("interval"), Option("n_boot")),
            interval="Wilson",
            criterion="bic",
            stability=True,
            lrt=True,
            complete_data=False,
            seed_code=6,  # seed_code 7 is bayes-rating-lca's
            color="#e6ab02",
        ),
        Family(
            name=BAYES_RATING_LCA,
            title="Bayesian latent class on ratings",
            data="ratings",
            bayesian=True,
            module="latentseg.models.bayes.rating_lca",
            function="fit_bayes_rating_lca",
            # n_init (the EM warm starts) stays at the engine's own default, as for bayes-lca
            options=(*_MCMC, Option("measurement"), Option("n_init")),
            interval="posterior credible",
            criterion="loo",
            stability=False,
            lrt=False,
            complete_data=False,
            seed_code=7,
            color="#a6761d",
        ),
    )
}

#: Every family name, in sweep order.
NAMES: tuple[str, ...] = tuple(FAMILIES)

#: The baseline of the k-means versus latent class comparison (playbook step 8), and its partner.
BASELINE = KMEANS
LATENT_CLASS = LCA
#: The family ``latentseg demo`` keeps: its segment sizes carry posterior credible intervals.
DEMO = BAYES_GMM
#: The defaults of ``[model] model`` and ``[select] models``.
DEFAULT_FAMILY = GMM
DEFAULT_SWEEP = (KMEANS, GMM, LCA, BAYES_GMM)


def family(name: str) -> Family:
    """The registry entry of a family name.

    Raises
    ------
    ConfigError
        An unknown name (the message lists the known ones).

    Examples
    --------
    >>> family("gmm").criterion
    'bic'
    >>> family("gmmm")
    Traceback (most recent call last):
    ...
    latentseg.errors.ConfigError: Unknown model 'gmmm'; choose one of kmeans, gmm, lca, bayes-gmm, bayes-lca, rating-lca, bayes-rating-lca.
    """
    try:
        return FAMILIES[str(name)]
    except KeyError:
        raise ConfigError(f"Unknown model {name!r}; choose one of {', '.join(NAMES)}.") from None


def check_names(models: Any, what: str = "models") -> list[str]:
    """Family names from a list or a comma-separated string, checked, without repeats.

    Examples
    --------
    >>> check_names("gmm, lca,gmm")
    ['gmm', 'lca']
    """
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    out: list[str] = []
    for m in models:
        if m not in FAMILIES:
            raise ConfigError(f"Unknown model {m!r} in {what}; choose from {', '.join(NAMES)}.")
        if m not in out:
            out.append(m)
    if not out:
        raise ConfigError(f"{what} is empty; give at least one of {', '.join(NAMES)}.")
    return out
