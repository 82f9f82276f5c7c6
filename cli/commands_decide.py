"""``latentseg profile`` and ``latentseg size``: from a saved segmentation to decisions.

``profile MODEL`` profiles and names the segments in outcome terms, overlays profile columns
(crosstabs, tests, fingerprints), fits the finder model on them, compares distal outcomes across
segments (BCH-corrected) and assembles the segment map. ``size MODEL --tam N`` extrapolates the
segment shares to a market, with revenue from ``--arpu`` or ``--arpu-column``.

MODEL is a directory written by ``latentseg fit --save`` / ``latentseg run`` (or
:func:`latentseg.save_model`). The survey is re-read from the path saved with the model, or from
``--survey``; a model fitted on a score table (``--data-kind scores``) is profiled on that table.
Defaults come from the model's saved configuration (``[profile]`` and ``[size]``), overridden by
the options.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from latentseg.cli._common import command, echo_json, info, out_console

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

WEIGHTINGS = ("proportional", "bch", "modal")


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


def _inputs(saved: Any, survey_path: Path | None) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame, str]:
    """Outcome-level scores, the outcome table (or None) and the profile table, and their source."""
    import pandas as pd

    cfg = saved.config or {}
    spec = dict(saved.meta.get("data") or {})
    kind = spec.get("data_kind") or spec.get("kind") or "survey"
    path = survey_path or (Path(spec["path"]) if spec.get("path") else None)
    if path is None:
        _fail(
            f"Model '{saved.name}' does not say which survey it was fitted on; pass the survey with --survey."
        )
    assert path is not None
    if not path.exists():
        hint = "" if survey_path else " (the path saved with the model); pass the survey with --survey"
        _fail(f"Survey file '{path}' does not exist{hint}.")
    if survey_path is not None or kind == "survey":
        from latentseg.io import read_survey
        from latentseg.prepare.scoring import opportunity_scores

        survey = read_survey(path, config=cfg)
        return opportunity_scores(survey), survey.outcomes, survey.profile, str(path)
    from latentseg.io import read_table

    table = read_table(path)
    ids = [c for c in table.columns if str(c).lower() in ("respondent_id", "id")]
    if ids:
        table = table.set_index(ids[0])
    features = [f for f in saved.result.feature_names if f in table.columns]
    if not features:
        _fail(f"'{path}' has none of the model's columns {list(saved.result.feature_names)[:5]}; pass --survey.")
    rest = [c for c in table.columns if c not in features]
    return table[features].apply(pd.to_numeric, errors="coerce"), None, table[rest], str(path)


def _names(cfg: dict[str, Any]) -> dict[int, str] | None:
    names = (cfg.get("profile") or {}).get("names") or {}
    return dict(names) or None


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
            out[int(key)] = float(val)
        except ValueError:
            _fail(f"--product-fit takes SEGMENT=VALUE pairs such as '1=0.8,2=0.3'; got {part.strip()!r}.")
        if not sep:
            _fail(f"--product-fit takes SEGMENT=VALUE pairs such as '1=0.8,2=0.3'; got {part.strip()!r}.")
    return out


def register(app: typer.Typer) -> None:
    @command(app, "profile")
    def profile_cmd(
        model: Annotated[Path, typer.Argument(help="Saved model directory (models/NAME).")],
        survey: Annotated[
            Path | None, typer.Option("--survey", help="Survey file [the one saved with the model].")
        ] = None,
        overlay_cols: Annotated[
            str | None,
            typer.Option("--overlay", help="Comma-separated profile columns to overlay [config; empty = all]."),
        ] = None,
        distal_cols: Annotated[
            str | None, typer.Option("--distal", help="Comma-separated distal-outcome columns [config].")
        ] = None,
        weighting: Annotated[
            str, typer.Option("--weighting", help="Overlay weighting: proportional | bch | modal.")
        ] = "proportional",
        distal_method: Annotated[
            str, typer.Option("--distal-method", help="Distal correction: bch | ml | modal | proportional.")
        ] = "bch",
        current: Annotated[
            str | None,
            typer.Option(
                "--current-solution",
                help="Profile column naming the current solution [a column named like current_tool / current_solution].",
            ),
        ] = None,
        top: Annotated[int | None, typer.Option("--top", help="Defining outcomes per segment [config: 5].")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print everything as one JSON object.")] = False,
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Folder to write profiles, overlays, distal and the segment map to."),
        ] = None,
    ) -> None:
        """Profile and name the segments, overlay profile columns, compare distal outcomes, build the segment map."""
        import warnings

        from latentseg.decide.distal import DISTAL_METHODS, distal
        from latentseg.errors import LatentsegWarning
        from latentseg.decide.finder import finder
        from latentseg.decide.overlay import overlay
        from latentseg.decide.profiling import profile
        from latentseg.decide.segmap import find_current_solution_column, segment_map
        from latentseg.decide.sizing import size_segments

        if weighting not in WEIGHTINGS:
            _fail(f"--weighting must be one of {', '.join(WEIGHTINGS)}; got {weighting!r}.")
        if distal_method not in DISTAL_METHODS:
            _fail(f"--distal-method must be one of {', '.join(DISTAL_METHODS)}; got {distal_method!r}.")
        saved = _load(model)
        cfg = saved.config or {}
        pcfg = cfg.get("profile") or {}
        seed = (cfg.get("model") or {}).get("random_seed")
        result = saved.result
        scores, outcomes, prof_df, source = _inputs(saved, survey)
        profiles = profile(result, scores, outcomes, top=top or int(pcfg.get("top_outcomes", 5)), names=_names(cfg))
        result = profiles.apply(result)

        ov_cols = _split(overlay_cols)
        if ov_cols is None:
            ov_cols = list(pcfg.get("overlay") or [])
        di_cols = _split(distal_cols)
        if di_cols is None:
            di_cols = list(pcfg.get("distal") or [])
        if not ov_cols:
            ov_cols = [str(c) for c in prof_df.columns if str(c) not in di_cols]
        unknown = [c for c in ov_cols + di_cols if c not in prof_df.columns]
        if unknown:
            _fail(
                f"Columns {unknown} are not in the survey's profile columns "
                f"{[str(c) for c in prof_df.columns][:20]} ({source})."
            )
        notes: list[str] = []
        overlays = overlay(result, prof_df, columns=ov_cols, weighting=weighting, random_seed=seed) if ov_cols else None
        find = None
        if overlays is not None:
            notes.extend(f"overlay skipped {c}: {why}" for c, why in overlays.skipped.items())
        finder_cols = [c for c in ov_cols if overlays is None or c in overlays.columns]
        if finder_cols:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", LatentsegWarning)
                try:
                    find = finder(result, prof_df, columns=finder_cols, random_seed=seed)
                except Exception as exc:  # noqa: BLE001 - the finder is an extra; say why it is missing
                    from latentseg.errors import LatentsegError

                    if not isinstance(exc, LatentsegError):
                        raise
                    notes.append(f"finder not fitted: {exc}")
            notes.extend(str(w.message) for w in caught if issubclass(w.category, LatentsegWarning))
        dist = distal(result, prof_df, di_cols, method=distal_method) if di_cols else None
        if current is not None and current not in prof_df.columns:
            _fail(f"--current-solution column {current!r} is not in the survey's profile columns ({source}).")
        current = find_current_solution_column(prof_df, current)
        scfg = cfg.get("size") or {}
        sizing = None
        tam = float(scfg.get("tam") or 0)
        if tam > 0:
            arpu_col = scfg.get("arpu_column") or None
            arpu = float(scfg.get("arpu") or 0) or None
            sizing = size_segments(
                result,
                tam=tam,
                arpu=None if arpu_col else arpu,
                arpu_column=arpu_col,
                data=prof_df if arpu_col else None,
                profiles=profiles,
            )
        smap = segment_map(
            result,
            profiles=profiles,
            overlays=overlays,
            sizing=sizing,
            current_solution_column=current,
            profile_df=prof_df if current else None,
        )
        payload: dict[str, Any] = {
            "model": saved.name,
            "model_id": saved.model_id,
            "source": source,
            "k": result.k,
            "n": result.n,
            "profiles": profiles.to_dict(),
            "overlays": None if overlays is None else overlays.to_dict(),
            "finder": None if find is None else {**find.summary(), "confusion": find.confusion.to_numpy().tolist()},
            "distal": None if dist is None else dist.to_dict(),
            "sizing": None if sizing is None else sizing.to_dict(),
            "segment_map": smap.to_dict(),
            "notes": notes,
        }
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
            _write_csv(profiles.to_frame(), output / "profiles.csv")
            smap.to_csv(output / "segment_map.csv")
            (output / "segment_map.json").write_text(smap.to_json(indent=2) + "\n", encoding="utf-8")
            (output / "segment_map.md").write_text(smap.to_markdown(), encoding="utf-8")
            if overlays is not None:
                import json

                (output / "overlays.json").write_text(json.dumps(overlays.to_dict(), indent=2) + "\n", encoding="utf-8")
                _write_csv(overlays.summary, output / "overlays.csv", index=True)
            if find is not None:
                import json

                (output / "finder.json").write_text(json.dumps(find.to_dict(), indent=2) + "\n", encoding="utf-8")
            if dist is not None:
                _write_csv(dist.table, output / "distal.csv")
            info(escape(f"wrote profiles, segment map{', overlays' if overlays else ''}"
                        f"{', distal' if dist else ''} -> {output}"))
        if as_json:
            echo_json(payload)
            return
        _print_profile(profiles, overlays, find, dist, smap, notes)

    @command(app, "size")
    def size_cmd(
        model: Annotated[Path, typer.Argument(help="Saved model directory (models/NAME).")],
        tam: Annotated[
            float | None, typer.Option("--tam", help="Total addressable market (customers) [config].")
        ] = None,
        tam_low: Annotated[float | None, typer.Option("--tam-low", help="Lower bound of the TAM.")] = None,
        tam_high: Annotated[float | None, typer.Option("--tam-high", help="Upper bound of the TAM.")] = None,
        arpu: Annotated[float | None, typer.Option("--arpu", help="Average revenue per customer [config].")] = None,
        arpu_column: Annotated[
            str | None, typer.Option("--arpu-column", help="Profile column with revenue per respondent [config].")
        ] = None,
        product_fit: Annotated[
            str | None, typer.Option("--product-fit", help="Product fit per segment, e.g. '1=0.8,2=0.3' (0-1).")
        ] = None,
        survey: Annotated[
            Path | None, typer.Option("--survey", help="Survey file [the one saved with the model].")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the sizing as JSON.")] = False,
    ) -> None:
        """Extrapolate segment shares to a market (counts with intervals) and revenue; flag segments."""
        from latentseg.decide.sizing import size_segments

        saved = _load(model)
        cfg = saved.config or {}
        scfg = cfg.get("size") or {}
        if arpu is not None and arpu_column is not None:
            _fail("Give either --arpu or --arpu-column, not both.")
        tam_v = tam if tam is not None else (float(scfg.get("tam") or 0) or None)
        if tam_v is None:
            _fail("size needs the market size: pass --tam N (or set [size] tam in the config).")
        if arpu is None and arpu_column is None:
            arpu_column = scfg.get("arpu_column") or None
            arpu = None if arpu_column else (float(scfg.get("arpu") or 0) or None)
        interval = None
        if (tam_low is None) != (tam_high is None):
            _fail("Give both --tam-low and --tam-high, or neither.")
        if tam_low is not None and tam_high is not None:
            interval = (tam_low, tam_high)
        result = saved.result
        profiles = None
        prof_df = None
        notes: list[str] = []
        try:
            scores, outcomes, prof_df, _ = _inputs(saved, survey)
        except Exception as exc:  # noqa: BLE001 - sizing works without the survey
            from latentseg.errors import LatentsegError

            if not isinstance(exc, LatentsegError) or arpu_column is not None:
                raise
            notes.append(f"survey not read ({exc}); growth flags need it.")
        else:
            from latentseg.decide.profiling import profile

            profiles = profile(result, scores, outcomes, top=int((cfg.get("profile") or {}).get("top_outcomes", 5)),
                               names=_names(cfg))
            result = profiles.apply(result)
        sizing = size_segments(
            result,
            tam=tam_v,
            tam_interval=interval,
            arpu=arpu,
            arpu_column=arpu_column,
            data=prof_df,
            product_fit=_product_fit(product_fit, result.k),
            profiles=profiles,
        )
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
    console.print(t)
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
            o.add_row(escape(name), escape(c.test), f"{c.p_value:.3g}", eff, c.strength)
        console.print(o)
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
        console.print(d)
        for _, r in dist.tests.iterrows():
            console.print(escape(f"{r['column']}: Wald chi2 = {r['statistic']:.3g}, df = {r['df']}, p = {r['p_value']:.3g}"))
    console.print(escape(f"Rule: {smap.rule}"))
    for n in notes:
        info(escape(f"note: {n}"))


def _print_sizing(sizing: Any, notes: list[str]) -> None:
    from rich.table import Table

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
            f"{r['count']:,.0f} ({r['count_lower']:,.0f}-{r['count_upper']:,.0f})",
        ]
        if has_rev:
            row += [f"{r['arpu']:,.2f}", f"{r['revenue']:,.0f} ({r['revenue_lower']:,.0f}-{r['revenue_upper']:,.0f})"]
        row.append(escape(str(r["flags"])))
        t.add_row(*row)
    console.print(t)
    for key, text in sizing.methods.items():
        console.print(escape(f"{key}: {text}"))
    console.print(escape(sizing.rules.describe()))
    for n in [*sizing.notes, *notes]:
        info(escape(f"note: {n}"))
