"""``latentseg profile`` and ``latentseg size``: from a saved segmentation to decisions.

``profile MODEL`` profiles and names the segments in outcome terms, overlays profile columns
(crosstabs, tests, fingerprints), fits the finder model on them, compares distal outcomes across
segments (BCH-corrected) and assembles the segment map. ``size MODEL --tam N`` extrapolates the
segment shares to a market, with revenue from ``--arpu`` or ``--arpu-column``.

MODEL is a directory written by ``latentseg fit --save`` / ``latentseg run`` (or
:func:`latentseg.save_model`). The survey is re-read from the path saved with the model, or from
``--survey``; a model fitted on a score table (``--data-kind scores``) is profiled on that table.
Either way the file is checked against the hash saved with the model
(:mod:`latentseg.prepare.provenance`): another file of the same name is refused, and a
``--survey`` file with other contents is accepted only when it holds the same respondents with
the same model input (a re-export, a profile column added).
Defaults come from the model's saved configuration (``[profile]`` and ``[size]``), overridden by
the options.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from latentseg.cli._common import command, echo_json, fit_table, from_config, info, out_console

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

def _fail(message: str) -> None:
    from latentseg.errors import ConfigError

    raise ConfigError(message)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [c.strip() for c in text.split(",") if c.strip()]


def _load(model_path: Path) -> Any:
    from latentseg.deliver.artifacts import load_model

    return load_model(model_path)


def _write_csv(frame: pd.DataFrame, path: Path, index: bool = False) -> None:
    from latentseg.io.files import safe_csv_cell

    out = frame.reset_index() if index else frame.copy()
    out.columns = [safe_csv_cell(str(c)) for c in out.columns]
    out.astype(object).map(safe_csv_cell).to_csv(path, index=False, lineterminator="\n")


def _product_fit(text: str | None, k: int) -> dict[int, float] | None:
    if not text:
        return None
    out: dict[int, float] = {}
    for part in text.split(","):
        key, sep, val = part.partition("=")
        try:
            seg = int(key)
            if seg in out:
                _fail(f"--product-fit gives segment {seg} more than once; give each segment once.")
            out[seg] = float(val)
        except ValueError:
            _fail(f"--product-fit takes SEGMENT=VALUE pairs such as '1=0.8,2=0.3'; got {part.strip()!r}.")
        if not sep:
            _fail(f"--product-fit takes SEGMENT=VALUE pairs such as '1=0.8,2=0.3'; got {part.strip()!r}.")
    return out


def profile_cmd(
    model: Annotated[Path, typer.Argument(help="Saved model directory (models/NAME).")],
    survey: Annotated[
        Path | None, typer.Option("--survey", help="Survey file. Default: the one saved with the model.")
    ] = None,
    overlay_cols: Annotated[
        str | None,
        typer.Option("--overlay", help=from_config("Comma-separated profile columns to overlay.", "profile", "overlay", empty="every profile column")),
    ] = None,
    distal_cols: Annotated[
        str | None, typer.Option("--distal", help=from_config("Comma-separated distal-outcome columns.", "profile", "distal"))
    ] = None,
    weighting: Annotated[
        Literal["proportional", "bch", "modal"], typer.Option("--weighting", help="How overlays weight respondents by their membership probabilities.")
    ] = "proportional",
    distal_method: Annotated[
        Literal["bch", "ml", "modal", "proportional"], typer.Option("--distal-method", help="Correction of distal outcomes for classification error.")
    ] = "bch",
    current: Annotated[
        str | None,
        typer.Option(
            "--current-solution",
            help=from_config("Profile column naming the current solution.", "profile", "current_solution",
                             empty="a column named like current_tool / current_solution"),
        ),
    ] = None,
    top: Annotated[int | None, typer.Option("--top", help=from_config("Defining outcomes per segment.", "profile", "top_outcomes"))] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as one JSON object.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder to write profiles, overlays, distal and the segment map to."),
    ] = None,
) -> None:
    """Profile and name the segments, overlay profile columns, compare distal outcomes, build the segment map."""
    from latentseg.decide.core import decide, decide_inputs
    from latentseg.decide.distal import DISTAL_METHODS

    if distal_method not in DISTAL_METHODS:
        _fail(f"--distal-method must be one of {', '.join(DISTAL_METHODS)}; got {distal_method!r}.")
    if output is not None:
        from latentseg.cli._common import model_inputs
        from latentseg.io.files import check_outputs

        check_outputs({"--output": output, **{f"--output's {name}": output / name for name in _PROFILE_FILES}},
                      {**model_inputs(model), "--survey": survey}, command="profile")
    saved = _load(model)
    scores, outcomes, prof_df, source, reduction = decide_inputs(saved, survey)
    cfg = _config(saved, {
        "overlay": _split(overlay_cols),
        "distal": _split(distal_cols),
        "top_outcomes": top,
        "current_solution": current,
    })
    d = decide(saved.result, scores, outcomes, prof_df, cfg, reduction=reduction, weighting=weighting,
               distal_method=distal_method, source=source)
    payload: dict[str, Any] = {
        "model": saved.name,
        "model_id": saved.model_id,
        "source": source,
        "k": d.result.k,
        "n": d.result.n,
        **d.to_dict(),
    }
    if output is not None:
        _write_outputs(d, output)
    if as_json:
        echo_json(payload)
        return
    _print_profile(d.profiles, d.overlays, d.finder, d.distal, d.segment_map, list(d.notes))


def _config(saved: Any, profile: dict[str, Any] | None = None, size: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's saved config, checked, with the command's options (``None`` = not given) over it."""
    from latentseg.prepare.core import resolve_config

    over = {"profile": {k: v for k, v in (profile or {}).items() if v is not None},
            "size": {k: v for k, v in (size or {}).items() if v is not None}}
    cfg, _ = resolve_config(dict(saved.config or {}), over)
    return cfg


#: The files ``profile --output`` writes into its folder.
_PROFILE_FILES = ("profiles.csv", "segment_map.csv", "segment_map.json", "segment_map.md", "overlays.json",
                  "overlays.csv", "finder.json", "distal.csv")


def _write_outputs(d: Any, output: Path) -> None:
    import json

    output.mkdir(parents=True, exist_ok=True)
    _write_csv(d.profiles.to_frame(), output / "profiles.csv")
    d.segment_map.to_csv(output / "segment_map.csv")
    (output / "segment_map.json").write_text(d.segment_map.to_json(indent=2) + "\n", encoding="utf-8")
    (output / "segment_map.md").write_text(d.segment_map.to_markdown(), encoding="utf-8")
    if d.overlays is not None:
        (output / "overlays.json").write_text(json.dumps(d.overlays.to_dict(), indent=2) + "\n", encoding="utf-8")
        _write_csv(d.overlays.summary, output / "overlays.csv", index=True)
    if d.finder is not None:
        (output / "finder.json").write_text(json.dumps(d.finder.to_dict(), indent=2) + "\n", encoding="utf-8")
    if d.distal is not None:
        _write_csv(d.distal.table, output / "distal.csv")
    info(escape(f"wrote profiles, segment map{', overlays' if d.overlays else ''}"
                f"{', distal' if d.distal else ''} -> {output}"))


def size_cmd(
    model: Annotated[Path, typer.Argument(help="Saved model directory (models/NAME).")],
    tam: Annotated[
        float | None, typer.Option("--tam", help=from_config("Total addressable market (customers); 0 = shares only.", "size", "tam"))
    ] = None,
    tam_low: Annotated[float | None, typer.Option("--tam-low", help="Lower bound of the TAM.")] = None,
    tam_high: Annotated[float | None, typer.Option("--tam-high", help="Upper bound of the TAM.")] = None,
    arpu: Annotated[float | None, typer.Option("--arpu", help=from_config("Average revenue per customer; 0 = none.", "size", "arpu"))] = None,
    arpu_column: Annotated[
        str | None, typer.Option("--arpu-column", help=from_config("Profile column with revenue per respondent.", "size", "arpu_column"))
    ] = None,
    product_fit: Annotated[
        str | None, typer.Option("--product-fit", help="Product fit per segment, e.g. '1=0.8,2=0.3' (0-1).")
    ] = None,
    survey: Annotated[
        Path | None, typer.Option("--survey", help="Survey file. Default: the one saved with the model.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the sizing as JSON.")] = False,
) -> None:
    """Extrapolate segment shares to a market (counts with intervals) and revenue; flag segments."""
    from latentseg.decide.core import decide_inputs, decide_sizes
    from latentseg.errors import DataMismatchError, LatentsegError

    saved = _load(model)
    if arpu is not None and arpu_column is not None:
        _fail("Give either --arpu or --arpu-column, not both.")
    size_over: dict[str, Any] = {"tam": tam}
    if arpu is not None:
        size_over.update(arpu=arpu, arpu_column="")
    if arpu_column is not None:
        size_over.update(arpu_column=arpu_column, arpu=0.0)
    cfg = _config(saved, size=size_over)
    if not cfg["size"]["tam"]:
        _fail("size needs the market size: pass --tam N (or set [size] tam in the config).")
    if (tam_low is None) != (tam_high is None):
        _fail("Give both --tam-low and --tam-high, or neither.")
    interval = (tam_low, tam_high) if tam_low is not None and tam_high is not None else None
    fit_ = _product_fit(product_fit, saved.result.k)
    notes: list[str] = []
    try:
        scores, outcomes, prof_df, source, reduction = decide_inputs(saved, survey)
    except LatentsegError as exc:  # sizing works without the survey (shares only; no growth flags)
        if cfg["size"]["arpu_column"] or isinstance(exc, DataMismatchError):  # never size on another survey
            raise
        from latentseg.decide.sizing import size_segments

        notes.append(f"survey not read ({exc}); growth flags need it.")
        sizing = size_segments(saved.result, tam=float(cfg["size"]["tam"]), tam_interval=interval,
                               arpu=float(cfg["size"]["arpu"]) or None, product_fit=fit_)
    else:
        sizing = decide_sizes(saved.result, scores, outcomes, prof_df, cfg, tam_interval=interval, product_fit=fit_)
    if as_json:
        d = sizing.to_dict()
        d["notes"] = list(d["notes"]) + notes
        echo_json({"model": saved.name, "model_id": saved.model_id, **d})
        return
    _print_sizing(sizing, notes)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _print_profile(profiles: Any, overlays: Any, find: Any, dist: Any, smap: Any, notes: list[str]) -> None:
    from rich.table import Table

    console = out_console()
    t = Table(title="Segments", title_justify="left")
    for col in ("#", "Segment", "Share (interval)", "Underserved", "Defining outcomes", "Recommendation"):
        t.add_column(col)
    for s in profiles.segments:
        m = smap[s.id]
        t.add_row(
            str(s.id),
            escape(s.handle),
            f"{_pct(s.share)} ({_pct(s.share_lower)}-{_pct(s.share_upper)})",
            f"{s.n_underserved} ({s.n_extremely_underserved} extremely)",
            escape("; ".join(profiles.statement(o) for o in s.defining_outcomes[:3])),
            escape(m["recommendation"]),
        )
    console.print(fit_table(t, console.width))
    for s in profiles.segments:
        console.print(escape(f"{s.id}. {s.name}"), style="bold")
        console.print(escape(s.paragraph))
        if overlays is not None:
            console.print(escape(f"   fingerprint: {overlays.fingerprint_text(s.id)}"))
    if overlays is not None:
        o = Table(title=f"Overlays ({overlays.weighting} weighting)", title_justify="left")
        for col in ("Column", "Test", "p", "Effect", "Strength"):
            o.add_column(col)
        for name, c in overlays.columns.items():
            eff = f"V = {c.effect:.2f}" if c.kind == "categorical" else f"eta2 = {c.effect:.3f}"
            o.add_row(escape(name), escape(c.test), "< 0.001" if c.p_value < 0.001 else f"{c.p_value:.3f}", eff, c.strength)
        console.print(fit_table(o, console.width))
        console.print(escape(overlays.thresholds))
    if find is not None:
        verdict = "beats" if find.beats_baseline else "does not beat"
        console.print(
            escape(
                f"finder ({find.method}): cross-validated accuracy {find.cv_accuracy:.0%} {verdict} the "
                f"majority baseline {find.baseline_accuracy:.0%} (p = {find.p_value:.3g})"
            )
        )
    if dist is not None:
        d = Table(title=f"Distal outcomes ({dist.method}; naive = modal assignment)", title_justify="left")
        for col in ("Column", "Category", "Segment", "Estimate (95%)", "Naive"):
            d.add_column(col)
        for _, r in dist.table.iterrows():
            d.add_row(
                escape(str(r["column"])),
                escape(str(r["category"])),
                str(r["segment"]),
                f"{r['estimate']:.3g} ({r['lower']:.3g}-{r['upper']:.3g})",
                f"{r['naive_estimate']:.3g}",
            )
        console.print(fit_table(d, console.width))
        for _, r in dist.tests.iterrows():
            console.print(escape(f"{r['column']}: Wald chi2 = {r['statistic']:.3g}, df = {r['df']}, p = {r['p_value']:.3g}"))
    console.print(escape(f"Rule: {smap.rule}"))
    for n in notes:
        info(escape(f"note: {n}"))


def _print_sizing(sizing: Any, notes: list[str]) -> None:
    from rich.table import Table

    from latentseg._display import estimate  # counts rounded to what their interval supports

    console = out_console()
    t = Table(title=f"Segment sizes (TAM {sizing.tam:,.0f})", title_justify="left")
    cols = ["#", "Segment", "Share (interval)", "Customers (interval)"]
    has_rev = "revenue" in sizing.table.columns
    if has_rev:
        cols += ["ARPU", "Revenue (interval)"]
    cols.append("Flags")
    for c in cols:
        t.add_column(c)
    for j, r in sizing.table.iterrows():
        row = [
            str(j),
            escape(str(r["label"])),
            f"{_pct(r['share'])} ({_pct(r['share_lower'])}-{_pct(r['share_upper'])})",
            estimate(r["count"], r["count_lower"], r["count_upper"]),
        ]
        if has_rev:
            row += [f"{r['arpu']:,.2f}", estimate(r["revenue"], r["revenue_lower"], r["revenue_upper"])]
        row.append(escape(str(r["flags"])))
        t.add_row(*row)
    console.print(fit_table(t, console.width))
    for key, text in sizing.methods.items():
        console.print(escape(f"{key}: {text}"))
    console.print(escape(sizing.rules.describe()))
    for n in [*sizing.notes, *notes]:
        info(escape(f"note: {n}"))


def register(app: typer.Typer) -> None:
    """Add ``profile`` and ``size`` to ``app``."""
    command(app, "profile")(profile_cmd)
    command(app, "size")(size_cmd)
