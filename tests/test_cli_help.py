"""The CLI's help and consoles (issue 15, item 6): help shows every option's text as written
(config keys in square brackets survive rich markup) with its default; options with fixed choices
list them, complete them, and refuse anything else with exit 2; console tables at 80 columns wrap
text or leave columns out, and never show "…" in place of a number."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
import typer.main
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from latentseg.cli._common import ModelName, fit_table
from latentseg.cli.app import app

ROOT = typer.main.get_command(app)


def _command(name: str):
    cmd = ROOT.get_command(ROOT.context_class(ROOT), name)
    assert cmd is not None
    return cmd


def _invoke(*args: object, columns: int = 250):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns), "NO_COLOR": "1"})


def _flat(text: str) -> str:
    """Help output as one line: box characters dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize("name", ["validate", "score", "fit", "select", "profile", "size", "run", "demo", "assign", "report"])
def test_help_shows_every_option_text_as_written(name):
    res = _invoke(name, "--help")
    assert res.exit_code == 0, res.output
    flat = _flat(res.stdout)
    for p in _command(name).params:
        text = " ".join((getattr(p, "help", None) or "").split())
        assert text in flat, (p.name, text)  # nothing eaten, "[select] models" included


def test_help_names_the_config_key_and_default_of_options_that_default_to_the_config():
    run = _flat(_invoke("run", "--help").stdout)
    assert "Default: [select] models from the config, else kmeans,gmm,lca,bayes-gmm." in run
    assert "Default: [model] random_seed from the config, else 20261122." in run
    assert "Default: [reduce] method from the config, else none." in run
    assert "Default: ./latentseg.toml if present." in run
    fit = _flat(_invoke("fit", "--help").stdout)
    assert "Default: [model] model from the config, else gmm." in fit and "[default: survey]" in fit
    profile = _flat(_invoke("profile", "--help").stdout)
    assert "Default: [profile] top_outcomes from the config, else 5." in profile and "[default: proportional]" in profile
    assert "Default: [size] tam from the config, else 0." in _flat(_invoke("size", "--help").stdout)


#: (command line up to the option, option, the allowed values the registries name)
def _choices() -> list[tuple[list[str], str, tuple[str, ...]]]:
    from latentseg.config import KEYS
    from latentseg.decide.core import OVERLAY_WEIGHTINGS
    from latentseg.decide.distal import DISTAL_METHODS
    from latentseg.models.bayes.engine import SAMPLERS
    from latentseg.models.families import NAMES
    from latentseg.prepare.core import INPUT_KINDS

    reductions = next(k.choices for k in KEYS if k.dotted == "reduce.method")
    return [
        (["run", "s.csv"], "--model", tuple(NAMES)),
        (["run", "s.csv"], "--reduce", tuple(reductions)),
        (["fit", "s.csv", "--k", "2"], "--model", tuple(NAMES)),
        (["fit", "s.csv", "--k", "2"], "--data-kind", tuple(INPUT_KINDS)),
        (["fit", "s.csv", "--k", "2"], "--sampler", tuple(SAMPLERS)),
        (["select", "s.csv"], "--data-kind", ("survey", "scores")),
        (["profile", "models/m"], "--weighting", tuple(OVERLAY_WEIGHTINGS)),
        (["profile", "models/m"], "--distal-method", tuple(DISTAL_METHODS)),
        (["assign", "models/m", "s.csv", "-o", "o.csv"], "--from", ("auto", "ratings", "features", "observables")),
    ]


@pytest.mark.parametrize(("head", "option", "allowed"), _choices(), ids=lambda v: v if isinstance(v, str) else None)
def test_fixed_choices_are_listed_completed_and_checked(head, option, allowed, tmp_path):
    cmd = _command(head[0])
    param = next(p for p in cmd.params if option in getattr(p, "opts", ()))
    help_text = _flat(_invoke(head[0], "--help").stdout)
    assert "<" + "|".join(allowed) + ">" in help_text  # listed in --help, exactly as the registry has them
    ctx = cmd.make_context(head[0], [], resilient_parsing=True)
    done = [c.value for c in param.shell_complete(ctx, allowed[-1][:2])]
    assert allowed[-1] in done and all(c.startswith(allowed[-1][:2]) for c in done)  # completed
    res = _invoke(*head, option, "bogus")
    assert res.exit_code == 2, res.output  # a usage error, before any file is read
    flat = _flat(res.output)
    assert f"Invalid value for '{option}'" in flat and all(f"'{a}'" in flat for a in allowed)
    assert "Traceback" not in res.output


def test_model_names_are_plain_strings_downstream():
    assert [m.value for m in ModelName] == [str(m) for m in ModelName] and ModelName("gmm") == "gmm"
    assert f"{ModelName('bayes-gmm')}" == "bayes-gmm"


# ------------------------------------------------------------------------ tables at 80 columns
def _render(renderable: object, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_fit_table_keeps_every_number_whole_at_80_columns():
    t = Table(title="4 segments (bayes-gmm), 385 respondents")
    for h, justify in (("#", "right"), ("Segment", "left"), ("Size", "right"), ("Interval", "right"),
                       ("Market", "right"), ("Recommendation", "left")):
        t.add_column(h, justify=justify)
    rows = [("1", "Coordinating Speed Seekers from the largest companies in Europe", "34%", "29%-39%",
             "17,000 (15,000–19,000)", "deprioritize"),
            ("2", "Planning Risk Reducers", "28%", "24%-32%", "14,000 (12,000–16,000)", "target")]
    for r in rows:
        t.add_row(*r)
    naive = _render(t, 60)
    assert "…" in naive  # what rich does on its own at this width (the issue)
    out = _render(fit_table(t, 80))
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    for r in rows:
        for cell in r[2:]:
            assert cell in out, cell  # each number on one line, whole
    assert "Coordinating" in out and "Europe" in out  # the long name wraps


def test_fit_table_leaves_optional_columns_out_then_falls_back_to_one_block_per_row():
    headers = ["model", "k", "bic", "icl", "loo", "loo se", "silhouette", "inertia", "relative entropy",
               "smallest share", "stability mean", "converged", ""]
    row = ["bayes-gmm", "7", "43,840.6", "43,850.1", "-21,000.2", "31.2", "0.215", "72,998.2", "0.91", "28.1%", "0.99",
           "yes", "<- recommended"]

    def table() -> Table:  # fit_table adjusts the table it is given: a fresh one each time
        t = Table(title="Choosing k")
        for h in headers:
            t.add_column(h, justify="right")
        t.add_row(*row)
        return t

    optional = ["smallest share", "stability mean", "icl", "inertia", "relative entropy", "loo se"]
    out = _render(fit_table(table(), 80, optional=optional))
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    for cell in ("43,840.6", "-21,000.2", "0.215", "yes"):
        assert cell in out
    assert "left out at this width: loo se, relative entropy, inertia, icl" in " ".join(out.split())
    narrow = _render(fit_table(table(), 40), 40)  # nothing fits 40 columns as a table: one block per row
    assert "…" not in narrow and "bic: 43,840.6" in narrow and "loo se: 31.2" in narrow


def test_fit_and_select_print_whole_numbers_at_80_columns(tmp_path):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (60, 3)), rng.normal(5, 1, (60, 3))]
    path = tmp_path / "scores.csv"
    pd.DataFrame(X, columns=["x1", "x2", "x3"]).to_csv(path, index=False)
    cfg = tmp_path / "fast.toml"
    cfg.write_text("[select]\nstability_subsamples = 0\n[model]\nn_init = 2\n")
    fit = _invoke("fit", path, "--data-kind", "scores", "--model", "gmm", "--k", "2", "--seed", "1", "--config", cfg,
                  columns=80)
    assert fit.exit_code == 0, fit.output
    assert "…" not in fit.stdout and max(len(line) for line in fit.stdout.splitlines() if line[:1] in "┏┃┡│└") <= 80
    assert re.search(r"\d{3}\.\d{3}", fit.stdout)  # BIC printed whole (e.g. 1234.567)
    sel = _invoke("select", path, "--data-kind", "scores", "--models", "kmeans,gmm", "--k", "2..4", "--config", cfg,
                  columns=80)
    assert sel.exit_code == 0, sel.output
    rows = [line for line in sel.stdout.splitlines() if line[:1] in "┏┃┡│└"]  # the table (prose lines run on)
    assert len(rows) >= 8 and "…" not in "".join(rows) and max(len(line) for line in rows) <= 80
    assert "Recommended k: 2" in sel.stdout
