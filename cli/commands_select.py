"""``latentseg select``, ``latentseg compare`` and ``latentseg study``.

- ``select DATA``: sweep model families over a k range and recommend a k, with the rule in words
  (:func:`latentseg.choose.selection.select`). ``DATA`` is a survey (read, cleaned and scored; latent class
  models fit the per-outcome opportunity levels) or, with ``--data-kind scores``, any numeric
  table (latent class models then fit its opportunity levels, which assumes opportunity scores).
- ``compare A B``: two saved models (directories written by ``latentseg fit --save`` / ``run``)
  or two assignment tables (CSV / Parquet with ``respondent_id``, ``segment`` and optionally
  ``p_1..p_k``); see :func:`latentseg.choose.comparison.compare`.
- ``study CONFIG``: run or resume a simulation study (:func:`latentseg.research.study.run_study`).

Heavy imports (pandas, scikit-learn, PyMC, matplotlib) happen inside the commands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from latentseg.cli._common import command, echo_json, err_console, info, out_console, state
from latentseg.cli._common import from_config  # help naming the config key an option overrides
from latentseg.cli._common import NoWeightsOpt, WeightsOpt, weight_overrides
from latentseg.models.families import NAMES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from latentseg.result import SegmentationResult



def _config_error(message: str) -> None:
    from latentseg.errors import ConfigError

    raise ConfigError(message)


class PlainProgress:
    """Progress off a terminal (a log file, CI, a pipe): plain lines on stderr, one when a step
    starts and when a fit starts or ends, and every ``every`` seconds while nothing else is said
    (so a long fit shows it is alive)::

        [   0.1 s] prepare
        [   6.2 s] select: fit 16 of 20: bayes-gmm k=3 (running)
        [  21.2 s] select: fit 16 of 20: bayes-gmm k=3 (running), 15 s so far

    Use as a context manager; ``update(step, done, total, detail)`` as the pipeline's progress
    callback (``done`` counts finished fits; a ``detail`` ending in ``(running)`` names the one
    that starts).
    """

    def __init__(self, console: Any, every: float = 15.0) -> None:
        import threading
        import time

        self._time = time.monotonic
        self.console, self.every = console, float(every)
        self.t0 = self.last = self._time()
        self.since = self.t0
        self.text = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="latentseg-progress", daemon=True)

    def __enter__(self) -> PlainProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def update(self, step: str, done: int | None = None, total: int | None = None, detail: str = "") -> None:
        if done is None or total is None:
            text = step + (f": {detail}" if detail else "")
        else:
            running = detail.endswith("(running)")
            text = f"{step}: fit {done + 1 if running else done} of {total}" + (f": {detail}" if detail else "")
        with self._lock:
            self.text, self.since = text, self._time()
            self._say(text)

    def _say(self, text: str) -> None:
        self.last = self._time()
        self.console.print(escape(f"[{self.last - self.t0:7.1f} s] {text}"), highlight=False, soft_wrap=True)

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.every)):
            with self._lock:
                if self.text and self._time() - self.last >= self.every:
                    self._say(f"{self.text}, {self._time() - self.since:.0f} s so far")


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar on stderr (nothing under ``--quiet``; plain periodic log lines,
    :class:`PlainProgress`, when stderr is not a terminal); yields ``update(done, total, text)``."""
    if state.quiet:
        yield lambda done, total, text="": None
        return
    console = err_console()
    if not console.is_terminal:
        with PlainProgress(console) as plain:
            yield lambda done, total, text="": plain.update(description, done, total, text)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err_console(),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None, last="")

        def update(done: int, total: int, text: str = "") -> None:
            bar.update(task, completed=done, total=total, last=escape(text))

        yield update


#: The most k values one sweep takes (a segmentation for leadership has 3-6 segments).
MAX_K_VALUES = 100


def parse_k(text: str) -> list[int]:
    """``"3..7"``, ``"3-7"``, ``"3,4,6"`` or ``"4"`` -> sorted list of ks.

    Examples
    --------
    >>> parse_k("3..7"), parse_k("2,5, 4"), parse_k("4")
    ([3, 4, 5, 6, 7], [2, 4, 5], [4])
    """
    t = str(text).strip()
    try:
        for sep in ("..", "-"):
            if sep in t:
                lo, hi = (int(p) for p in t.split(sep, 1))
                if hi - lo > MAX_K_VALUES:
                    raise ValueError
                ks = list(range(lo, hi + 1))
                break
        else:
            ks = sorted({int(p) for p in t.split(",") if p.strip()})
    except (ValueError, OverflowError):
        ks = []
    if not ks or min(ks) < 1 or len(ks) > MAX_K_VALUES:
        _config_error(
            f"--k must look like 3..7, 3-7 or 3,4,5 with every k >= 1 and at most {MAX_K_VALUES} values; got {text!r}."
        )
    return ks


def _fmt(v: Any, digits: int = 1) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f:
        return ""
    return f"{f:.{digits}f}"


def _print_selection(selection: Any, source: str) -> None:
    from rich.table import Table

    console = out_console()
    t = selection.table
    tab = Table(title=f"Choosing k ({source})", title_justify="left")
    cols = [("model", None), ("k", None), ("bic", 1), ("icl", 1), ("loo", 1), ("loo_se", 1),
            ("silhouette", 3), ("inertia", 1), ("relative_entropy", 2), ("smallest_share", None),
            ("stability_mean", 2), ("converged", None)]
    present = [(c, d) for c, d in cols if c in ("model", "k", "smallest_share", "converged") or t[c].notna().any()]
    for c, _ in present:
        tab.add_column(c.replace("_", " "), justify="left" if c == "model" else "right")
    tab.add_column("")
    for row in t.to_dict(orient="records"):
        cells = []
        for c, d in present:
            v = row[c]
            if c == "smallest_share":
                cells.append("" if v != v else f"{v:.1%}")
            elif c == "converged":
                cells.append("" if row["status"] in ("skipped", "stopped") else ("yes" if v else "NO"))
            elif c in ("model", "k"):
                cells.append(str(v))
            else:
                cells.append(_fmt(v, d or 1))
        rec = selection.per_family.get(row["model"], {}).get("recommended_k")
        if row["status"] in ("skipped", "stopped"):
            flag = row["status"]
        else:
            flag = "failed" if row["status"] != "ok" else ("<- recommended" if rec == row["k"] else ("" if row["admissible"] else "excluded"))
        cells.append(flag)
        tab.add_row(*cells)
    from latentseg.cli._common import fit_table

    # at 80 columns the less decisive criteria give way (most important first; the last is left out first)
    console.print(fit_table(tab, console.width, optional=["smallest share", "stability mean", "icl", "inertia",
                                                          "relative entropy", "loo se"]))
    rec = selection.recommended_k
    console.print(f"[bold]Recommended k: {rec if rec is not None else 'none'}[/]")
    head, _, rest = selection.rule.partition(" Rule: ")
    console.print(escape(head), highlight=False)
    if rest:
        basis = rest.split(". ", 1)[0] + "."
        console.print(escape("Rule: " + basis), highlight=False)
    for fam in selection.per_family.values():
        console.print(escape("  " + fam["rule"]), highlight=False)
    for note in selection.notes:
        console.print(escape("Note: " + note), highlight=False)


def _assignment_result(path: Path) -> SegmentationResult:
    """A result from an assignment table (respondent_id, segment[, p_1..p_k]), numbering kept."""
    import numpy as np
    import pandas as pd

    from latentseg._stats import wilson_interval
    from latentseg.errors import SurveyError, format_rows
    from latentseg.io import read_table
    from latentseg.result import SegmentationResult

    frame = read_table(path)
    lower = {str(c).lower(): c for c in frame.columns}
    from latentseg.prepare.core import ID_COLUMNS

    id_col = next((lower[c] for c in ID_COLUMNS if c in lower), None)
    if id_col is None or "segment" not in lower:
        raise SurveyError(
            f"{path}: an assignment table needs columns 'respondent_id' and 'segment' (and optionally "
            f"p_1..p_k); it has {format_rows([str(c) for c in frame.columns])}."
        )
    seg_col = lower["segment"]
    ids = frame[id_col]
    if ids.duplicated().any():
        raise SurveyError(f"{path}: column '{id_col}' has repeated respondent ids {format_rows(ids[ids.duplicated(keep=False)].unique())}.")
    seg = pd.to_numeric(frame[seg_col], errors="coerce")
    bad = seg.isna() | (seg < 1) | (seg != seg.round())
    if bad.any():
        raise SurveyError(
            f"{path}: column '{seg_col}' must hold segment numbers 1, 2, ...; bad values at respondents "
            f"{format_rows(ids[bad].tolist())}."
        )
    seg_i = seg.to_numpy(dtype=int)
    p_cols = sorted((c for c in frame.columns if str(c).lower().startswith("p_") and str(c)[2:].isdigit()),
                    key=lambda c: int(str(c)[2:]))
    if p_cols:
        k = len(p_cols)
        if [int(str(c)[2:]) for c in p_cols] != list(range(1, k + 1)):
            raise SurveyError(f"{path}: probability columns must be p_1..p_k without gaps; got {format_rows(p_cols)}.")
        z = frame[p_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        rows_bad = ~np.isfinite(z).all(axis=1) | (np.abs(z.sum(axis=1) - 1) > 1e-3) | (z < 0).any(axis=1)
        if rows_bad.any():
            raise SurveyError(
                f"{path}: p_1..p_{k} must be probabilities summing to 1 in every row; they do not at respondents "
                f"{format_rows(ids[rows_bad].tolist())}."
            )
        if seg_i.max() > k:
            raise SurveyError(f"{path}: column '{seg_col}' has segment {seg_i.max()} but there are only p_1..p_{k}.")
    else:
        k = int(seg_i.max())
        z = np.eye(k)[seg_i - 1]
    n = len(frame)
    shares = z.mean(axis=0)
    lo, hi = wilson_interval(shares * n, n)
    return SegmentationResult(
        model=path.stem,
        k=k,
        respondent_ids=pd.Index(ids),
        feature_names=(),
        memberships=z,
        centers=np.zeros((k, 0)),
        shares=shares,
        share_lower=lo,
        share_upper=hi,
        interval_method="95% Wilson",
        provenance={"source": str(path)},
    )


def _load_for_compare(path: Path) -> SegmentationResult:
    if path.is_dir():
        from latentseg.deliver.artifacts import load_model

        return load_model(path).result
    if not path.is_file():
        _config_error(f"No saved model directory or assignment file at '{path}'.")
    if path.suffix.lower() not in (".csv", ".parquet", ".tsv", ".txt", ".xlsx"):
        _config_error(
            f"'{path}' is neither a saved model directory nor an assignment table (.csv / .parquet with "
            "respondent_id, segment[, p_1..p_k])."
        )
    return _assignment_result(path)


def _run_blrt(selection: Any, scores: Any, levels: Any, fit_options: dict[str, Any], replicates: int,
              jobs: int, seed: int | None, ratings: Any = None, sample_weight: Any = None) -> list[dict[str, Any]]:
    """Bootstrap LRT k-1 vs k for every EM family and k of the sweep (reusing its fits)."""
    if replicates <= 0:
        return []
    from latentseg.choose.lrt import blrt
    from latentseg.models.families import FAMILIES

    rows = []
    for model, fam in FAMILIES.items():
        if not fam.lrt or model not in selection.per_family:
            continue
        data = ratings if fam.on_ratings else (levels if fam.categorical else scores)
        ks = sorted(int(k) for k in selection.table.loc[selection.table["model"] == model, "k"] if k >= 2)
        for k in ks:
            def fitted(kk: int) -> Any:
                try:
                    return selection.result(model, kk)
                except KeyError:
                    return None

            with progress_bar(f"BLRT {model} k={k - 1} vs {k}") as update:
                res = blrt(data, model, k, replicates=replicates, random_seed=seed, n_jobs=jobs,
                           progress=lambda d, t: update(d, t, ""), fit_options=fit_options.get(model, {}),
                           null=fitted(k - 1), alternative=fitted(k), sample_weight=sample_weight)
            rows.append(res.to_dict())
    return rows


def _check_select_paths(data: Path, config: Path | None, plots: Path | None, checkpoint: Path | None) -> None:
    """The output-path policy (:func:`latentseg.io.files.check_outputs`) for ``select``."""
    from latentseg.cli._common import config_inputs
    from latentseg.io.files import check_outputs

    outputs: dict[str, Any] = {"--plots": plots}
    if plots is not None:
        for kind in ("bic", "loo", "elbow", "silhouette"):
            outputs[f"the --plots figure selection_{kind}.png"] = plots / f"selection_{kind}.png"
    inputs = {"DATA": data, **config_inputs(config)}
    check_outputs(outputs, inputs, command="select")
    check_outputs({"--checkpoint": checkpoint}, inputs, command="select")  # may share a folder with --plots


def select_cmd(
    data: Annotated[Path, typer.Argument(help="Survey file, or a numeric score table with --data-kind scores.")],
    models: Annotated[
        str | None,
        typer.Option("--models", help=from_config(f"Comma-separated families, of {', '.join(NAMES)}.", "select", "models")),
    ] = None,
    k: Annotated[str | None, typer.Option("--k", help="k range, e.g. 3..7 or 3,4,5. Default: [select] k_min..k_max from the config, else 3..7.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help=from_config("Random seed.", "model", "random_seed"))] = None,
    config: Annotated[Path | None, typer.Option("--config", help="latentseg.toml with settings. Default: ./latentseg.toml if present.")] = None,
    data_kind: Annotated[Literal["survey", "scores"], typer.Option("--data-kind", help="A survey, or a numeric score table.")] = "survey",
    plots: Annotated[Path | None, typer.Option("--plots", help="Write the selection figures (PNG) to this folder.")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Keep each finished fit here; a rerun resumes from them.")
    ] = None,
    blrt_replicates: Annotated[
        int,
        typer.Option("--blrt", help="Also run the bootstrap LRT (k-1 vs k) for gmm / lca with this many replicates.", min=0),
    ] = 0,
    jobs: Annotated[int, typer.Option("--jobs", help="Worker processes for the bootstrap LRT.", min=1)] = 2,
    all_k: Annotated[bool, typer.Option("--all-k", help="Fit every family at every k, each to the end: no hopeless Bayesian fit skipped, no fit stopped for time [config: select.all_k].")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print {fits, recommended_k, rule, ...} as JSON.")] = False,
    weights: WeightsOpt = None,
    no_weights: NoWeightsOpt = False,
) -> None:
    """Fit every family over a k range and recommend a k, with the rule written out.

    Bayesian fits that cannot change the recommended k, or whose k is hopeless (docs/methods.md),
    are skipped, and a fit far past its family's time budget is stopped; both are listed with
    the reason (--all-k fits everything)."""
    from latentseg.choose.selection import select
    from latentseg.config import load_config, merge_config, select_options
    from latentseg.models.families import check_names, family
    from latentseg.prepare.core import prepare

    cfg = load_config(config)
    cfg["survey"].update(weight_overrides(weights, no_weights).get("survey", {}))
    if all_k:
        cfg["select"]["all_k"] = True
    sel_cfg = cfg["select"]
    if data_kind not in ("survey", "scores"):
        _config_error(f"--data-kind must be survey or scores; got {data_kind!r}.")
    _check_select_paths(data, config, plots, checkpoint)
    family_list = check_names(models if models else list(sel_cfg["models"]), "--models")
    ks = parse_k(k) if k else list(range(int(sel_cfg["k_min"]), int(sel_cfg["k_max"]) + 1))
    if seed is not None:
        cfg["model"]["random_seed"] = merge_config({"model": {"random_seed": seed}}, "options")["model"]["random_seed"]
    prepared = prepare(data, cfg, kind=data_kind, families=family_list)
    if prepared.cleaning is not None:
        info(escape(prepared.cleaning.summary().splitlines()[0]))
    fit_options = {}
    for note in prepared.notes:
        info(escape(f"note: {note}."))
    for m in family_list:
        eo = family(m).options_from_config(cfg)
        fit_options[m] = eo.options
        for note in eo.notes:
            info(escape(f"note: {note}."))
    source = f"{prepared.description}, {prepared.n} respondents"
    scores, levels = prepared.numeric, prepared.levels
    with progress_bar("select") as update:
        selection = select(
            scores,
            models=family_list,
            k=ks,
            random_seed=cfg["model"]["random_seed"],
            **select_options(cfg),
            fit_options=fit_options,
            progress=update,
            checkpoint_dir=checkpoint,
            categorical_data=levels,
            rating_data=prepared.ratings,
            sample_weight=None if prepared.weights is None else prepared.weights.to_numpy(),
        )
    lrt_rows = _run_blrt(selection, scores, levels, fit_options, blrt_replicates, jobs, cfg["model"]["random_seed"],
                         prepared.ratings, None if prepared.weights is None else prepared.weights.to_numpy())
    written = []
    if plots is not None:
        from latentseg.deliver.plots import write_selection_figures

        written = write_selection_figures(selection, plots)
        for p in written:
            info(escape(f"figure -> {p}"))
    if as_json:
        out = selection.to_dict()
        out["source"] = source
        out["weights"] = prepared.weights_info()
        for fit_dict in out.get("fits", []):  # each weighted fit names the column its weights came from
            if isinstance(fit_dict.get("weights"), dict) and fit_dict["weights"].get("column") is None:
                fit_dict["weights"]["column"] = prepared.weight_column
        out["plots"] = [str(p) for p in written]
        from latentseg.choose.lrt import lmr_table

        lmr = lmr_table(selection.table, int(scores.shape[0]))
        out["lmr"] = lmr.to_dict(orient="records")
        if lrt_rows:
            out["blrt"] = lrt_rows
        echo_json(out)
    else:
        _print_selection(selection, source)
        if prepared.weights is not None:
            from latentseg.prepare.core import weights_sentence

            out_console().print(escape(weights_sentence(prepared.weights_info(), "Fits and shares")), highlight=False)
        for row in lrt_rows:
            out_console().print(escape(row["summary"]), highlight=False)

def compare_cmd(
    a: Annotated[Path, typer.Argument(help="Saved model directory, or assignment table (respondent_id, segment[, p_1..]).")],
    b: Annotated[Path, typer.Argument(help="The second model or assignment table.")],
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the crosstab heatmap here (.png or .svg).")] = None,
    disagreements: Annotated[
        Path | None, typer.Option("--disagreements", help="Write the disagreeing respondents (CSV) here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare two segmentations of the same respondents: agreement, crosstab, shares, disagreements."""
    from latentseg.choose.comparison import compare
    from latentseg.cli._common import model_inputs
    from latentseg.io.files import check_outputs

    inputs = {**(model_inputs(a, "A") if a.is_dir() else {"A": a}), **(model_inputs(b, "B") if b.is_dir() else {"B": b})}
    check_outputs({"--plot": plot, "--disagreements": disagreements}, inputs, command="compare")
    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        _config_error(f"--plot must end in .png or .svg (the format follows the extension); got {str(plot)!r}.")
    ra = _load_for_compare(a)
    rb = _load_for_compare(b)
    names = None
    if ra.model == rb.model and ra.k == rb.k:
        names = (f"{a.name}", f"{b.name}") if a.name != b.name else None
    c = compare(ra, rb, names=names)
    if plot is not None:
        from latentseg.deliver.plots import plot_comparison

        plot_comparison(c, path=plot)
        info(escape(f"figure -> {plot}"))
    if disagreements is not None:
        disagreements.parent.mkdir(parents=True, exist_ok=True)
        from latentseg.io.files import safe_csv_frame

        safe_csv_frame(c.disagreements).to_csv(disagreements)  # ids made spreadsheet-safe
        info(escape(f"disagreements -> {disagreements}"))
    if as_json:
        echo_json(c.to_dict())
        return
    from rich.table import Table

    console = out_console()
    console.print(escape(c.summary), highlight=False)
    for note in c.notes:
        console.print(escape(f"note: {note}"), highlight=False)
    ct = Table(title=f"Respondents by segment (rows: {c.name_a}; columns: {c.name_b}, matched order)", title_justify="left")
    ct.add_column("")
    for col in c.crosstab.columns:
        ct.add_column(str(col), justify="right")
    for idx, row in c.crosstab.iterrows():
        ct.add_row(str(idx), *[str(int(v)) for v in row])
    console.print(ct)
    sh = Table(title=f"Share differences ({c.shares.attrs.get('interval', '95% interval')})", title_justify="left")
    for col in ("segment A", "segment B", "share A", "share B", "difference", "interval"):
        sh.add_column(col, justify="right")
    for r in c.shares.to_dict(orient="records"):
        sh.add_row(str(r["segment_a"]), str(r["segment_b"]), f"{r['share_a']:.1%}", f"{r['share_b']:.1%}",
                   f"{r['difference'] * 100:+.1f} pts", f"{r['lower'] * 100:+.1f} to {r['upper'] * 100:+.1f}")
    console.print(sh)
    console.print(f"ARI {c.ari:.3f}, NMI {c.nmi:.3f}, {len(c.disagreements)} of {c.n} respondents disagree.")

def study_cmd(
    config: Annotated[Path, typer.Argument(help="Study config (TOML with a [study] table; see examples/study.toml).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (resumes what is there).")] = Path("study_output"),
    jobs: Annotated[int, typer.Option("--jobs", help="Worker processes.", min=1)] = 1,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", metavar="ADDRESS",
        help="Run the replications on a Dask cluster: its scheduler's address (tcp://host:8786); needs "
             "pip install 'latentseg[dask]'. The tables are those of a local run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the per-method overview as JSON.")] = False,
) -> None:
    """Run (or resume) a simulation study of how well each method recovers known segments."""
    from latentseg.research.study import headline_tables, load_study_config, run_study

    from latentseg.io.files import check_outputs

    check_outputs({name: output / name for name in ("replications.csv", "summary.csv", "disagreement.csv", "study_config.json")},
                  {"CONFIG": config}, command="study", trees={"the study's cells folder": output / "cells"})
    if scheduler is not None and jobs != 1:
        _config_error("Give --jobs (worker processes here) or --scheduler (a Dask cluster), not both.")
    cfg = load_study_config(config)
    info(escape(f"{len(cfg.cells())} cells x {cfg.replications} replications, methods: {', '.join(cfg.methods)}"))
    with progress_bar("study") as update:
        res = run_study(cfg, output, n_jobs=jobs, scheduler=scheduler, progress=update)
    if res.resumed:
        info(f"{res.resumed} replication(s) were loaded from an earlier run, {res.computed} computed.")
    overall = headline_tables(res.summary)["overall"] if len(res.summary) else None
    if as_json:
        echo_json({
            "output": str(output),
            "files": {k: str(v) for k, v in res.files.items()},
            "resumed": res.resumed,
            "computed": res.computed,
            "overall": {} if overall is None else overall.reset_index().to_dict(orient="records"),
        })
        return
    from rich.table import Table

    if overall is not None:
        tab = Table(title="Per method, averaged over cells", title_justify="left")
        tab.add_column("method")
        for col in overall.columns:
            tab.add_column(col.replace("_", " "), justify="right")
        for method, row in overall.iterrows():
            tab.add_row(str(method), *[_fmt(v, 3) for v in row])
        out_console().print(tab)
    for name, path in res.files.items():
        info(escape(f"{name} -> {path}"))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    command(app, "select")(select_cmd)
    command(app, "compare")(compare_cmd)
    command(app, "study")(study_cmd)
