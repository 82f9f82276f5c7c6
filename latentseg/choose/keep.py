"""After the sweep: the segmentation to keep, and k-means against latent class at its k.

:func:`keep` takes the chosen family at the recommended k from a :class:`~latentseg.choose.selection.Selection`
(refitting it with the very seed the sweep used when a resumed sweep holds only its summary);
:func:`baseline_comparison` compares the k-means baseline with the latent class model at that k
(playbook step 8), fitting either when the sweep did not.

Every fit made here is weighted as the sweep's were: by the prepared input's survey weights
(:meth:`latentseg.prepare.core.Prepared.weights_for`), when it has them; each result it returns
records the weight column (:meth:`~latentseg.prepare.core.Prepared.stamp`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latentseg.errors import FitError, LatentsegError
from latentseg.models.families import BASELINE, LATENT_CLASS, family

__all__ = ["keep", "baseline_comparison", "fitted"]


def fitted(selection: Any, prepared: Any, model: str, k: int, options: Mapping[str, Mapping[str, Any]],
           seed: int | None) -> Any:
    """The fit of ``model`` at ``k``: the sweep's own when it has one (refitted with the sweep's
    seed for that family and k when a resumed sweep kept only its summary, or when a skip rule
    left it out: the very fit the sweep would have made), else a new fit with ``seed``; ``None``
    when the sweep's fit failed or was stopped for time.

    Raises
    ------
    LatentsegError
        A new fit failed.
    """
    from latentseg.choose.selection import child_seed
    from latentseg.models import fit

    table = selection.table
    rows = table[(table["model"] == model) & (table["k"] == k)]
    opts = dict(options.get(model, {}))
    weights = prepared.weights_for(model)
    if weights is not None:  # only then: an unweighted fit calls the engine exactly as before
        opts["sample_weight"] = weights
    stamp = prepared.stamp
    if rows.empty:  # not in the sweep: fit it here
        return stamp(fit(prepared.data_for(model), model, k, random_seed=seed, **opts))
    status = rows.iloc[0]["status"]
    if status == "skipped":
        return stamp(fit(prepared.data_for(model), model, k, random_seed=child_seed(selection, model, k), **opts))
    if status != "ok":
        return None
    res = selection.result(model, k)
    if res is None:  # resumed from a checkpoint without the full result: the sweep's fit again
        res = fit(prepared.data_for(model), model, k, random_seed=child_seed(selection, model, k), **opts)
    return stamp(res)


def keep(selection: Any, prepared: Any, preferred: str, k: int, options: Mapping[str, Mapping[str, Any]],
         seed: int | None) -> tuple[Any, str, str]:
    """(result, family, why) at ``k``: the preferred family if it has a good fit, else the first
    family in sweep order whose own rule recommends ``k``, else the first with a usable fit.

    Parameters
    ----------
    selection : Selection
    prepared : Prepared
        The sweep's input (:func:`latentseg.prepare.core.prepare`).
    preferred : str
        The family to keep (``--model`` / ``[model] model``).
    k : int
    options : mapping
        Engine options per family.
    seed : int or None
        The run's seed (for a family the sweep did not fit).

    Raises
    ------
    FitError
        No family has a usable fit at ``k``.
    """
    models = list(selection.settings.get("models", []))

    def usable(model: str) -> Any:
        try:
            return fitted(selection, prepared, model, k, options, seed)
        except (KeyError, LatentsegError):
            return None

    if preferred in models:
        res = usable(preferred)
        if res is not None:
            return res, preferred, f"{preferred} (the configured model family) at the recommended k = {k}"
    else:
        try:
            res = fitted(selection, prepared, preferred, k, options, seed)
            return res, preferred, f"{preferred} (the configured model family, fitted at the recommended k = {k})"
        except LatentsegError:
            pass
    for model in models:
        if selection.per_family.get(model, {}).get("recommended_k") == k:
            res = usable(model)
            if res is not None:
                return res, model, (
                    f"{model} at the recommended k = {k} ({preferred}, the configured family, has no usable fit at k = {k})"
                )
    for model in models:
        res = usable(model)
        if res is not None:
            return res, model, f"{model} at k = {k} (the first family with a usable fit at that k)"
    raise FitError(f"No model family has a usable fit at k = {k}; see the selection table for each fit's error.")


def baseline_comparison(selection: Any, prepared: Any, result: Any, kept: str, k: int,
                        options: Mapping[str, Mapping[str, Any]], seed: int | None) -> tuple[Any, str]:
    """(comparison or None, note): the k-means baseline against latent class at ``k`` (against the
    kept family when latent class cannot be fitted)."""
    from latentseg.choose.comparison import compare

    def get(model: str) -> Any:
        if kept == model:
            return result
        res = fitted(selection, prepared, model, k, options, seed)
        if res is None:
            raise FitError(f"the sweep's {model} fit at k = {k} failed")
        return res

    base, partner = family(BASELINE), family(LATENT_CLASS)
    try:
        km = get(base.name)
    except LatentsegError as exc:
        return None, f"no {base.title} comparison: {exc}"
    # the survey weights of the k-means fit's respondents, in its order (None: unweighted)
    w = None if prepared.weights is None else prepared.weights.reindex(km.respondent_ids).to_numpy(dtype=float)
    try:
        lc = get(partner.name)
        return compare(km, lc, names=(base.title, partner.title), sample_weight=w), ""
    except LatentsegError as exc:
        if kept == base.name:
            return None, f"no {partner.title} comparison: {exc}"
        note = f"{partner.title} could not be fitted at k = {k} ({exc}); {base.title} is compared with the chosen {kept} instead"
        return compare(km, result, names=(base.title, kept), sample_weight=w), note
