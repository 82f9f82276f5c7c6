"""Generate docs/cli.md (from the Typer app) and docs/config.md (from latentseg.config).

Usage::

    .venv/bin/python docs/gen_cli_reference.py          # rewrite both files
    .venv/bin/python docs/gen_cli_reference.py --check  # exit 1 if either is out of date

The CLI reference walks the Click command behind the Typer app (``typer.main.get_command``):
every command in the order ``latentseg --help`` lists it, its help text, usage line, arguments
and options with their defaults. Nothing depends on the terminal, so the output is stable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
CLI_MD = DOCS / "cli.md"
CONFIG_MD = DOCS / "config.md"

HEADER_CLI = """# Command-line reference

Generated from the Typer app by `docs/gen_cli_reference.py`; do not edit by hand
(`tests/test_cli_run.py` checks that this file is up to date).

Every command exits with 0 on success, 1 on invalid input or a failed fit (one message on
stderr, no traceback) and 2 on bad usage (an unknown option, a missing argument). Global
options go before the command: `latentseg --quiet run survey.csv`.

No command writes over one of its own inputs (paths compared resolved, derived names such as
`score`'s `<stem>_landscape.csv` included); `run`, `demo` and `fit --save` never replace a model
already saved under that name without `--force`, and one process at a time writes a model (a
second gets an error naming the first's pid; `run --wait` waits for it). A file-system failure
(a full disk, a read-only folder, a name too long, a parent that is a file) is one message naming
the path and the reason, exit 1.
"""

HEADER_CONFIG = """# Configuration reference (`latentseg.toml`)

Generated from `latentseg.config.KEYS` by `docs/gen_cli_reference.py`; do not edit by hand.

Settings are read from `--config FILE` (or `./latentseg.toml` when present) and merged over the
defaults below; command-line options override the file. Unknown sections or keys and values of
the wrong type are refused with a message naming the file and the key. Relative paths
(`survey.outcomes_file`) are relative to the config file.

An example (the one `latentseg demo` uses, `examples/latentseg.toml`):

"""


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _is(param: Any, kind: str) -> bool:
    """Click's parameter kind ("argument" / "option"), by duck typing: Typer may vendor Click."""
    return getattr(param, "param_type_name", "") == kind


def _command_md(name: str, cmd: Any, parent: Any) -> list[str]:
    ctx = cmd.context_class(cmd, info_name=name, parent=parent)
    lines = [f"## `latentseg {name}`", ""]
    help_text = (cmd.help or "").strip()
    if help_text:
        lines += [help_text.replace("\b\n", ""), ""]
    pieces = " ".join(str(x).strip("{}").upper() if str(x).startswith("{") else str(x) for x in cmd.collect_usage_pieces(ctx))
    lines += ["```text", f"latentseg {name} {pieces}".rstrip(), "```", ""]
    args = [p for p in cmd.params if _is(p, "argument")]
    opts = [p for p in cmd.params if _is(p, "option") and not p.hidden]
    if args:
        lines += ["| Argument | Description |", "|---|---|"]
        for p in args:
            lines.append(f"| `{p.name.upper()}` | {_escape(getattr(p, 'help', '') or '')} |")
        lines.append("")
    if opts:
        lines += ["| Option | Description |", "|---|---|"]
        for p in opts:
            record = p.get_help_record(ctx)
            if record is None:
                continue
            names, text = record
            lines.append(f"| `{_escape(names)}` | {_escape(text)} |")
        lines.append("")
    return lines


def cli_reference() -> str:
    """The CLI reference as Markdown."""
    import typer.main

    from latentseg.cli.app import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="latentseg")
    lines = [HEADER_CLI, "## `latentseg`", "", (root.help or "").strip(), ""]
    lines += ["| Option | Description |", "|---|---|"]
    for p in root.params:
        if _is(p, "option") and not p.hidden:
            record = p.get_help_record(ctx)
            if record is not None:
                lines.append(f"| `{_escape(record[0])}` | {_escape(record[1])} |")
    lines.append("")
    names = root.list_commands(ctx)
    lines += ["Commands: " + ", ".join(f"[`{n}`](#latentseg-{n})" for n in names), ""]
    for name in names:
        cmd = root.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        lines += _command_md(name, cmd, ctx)
    return "\n".join(lines).rstrip() + "\n"


def config_reference() -> str:
    """The configuration reference as Markdown."""
    from latentseg.config import config_reference_markdown

    example = (Path(__file__).resolve().parent.parent / "examples" / "latentseg.toml").read_text(encoding="utf-8")
    return HEADER_CONFIG + "```toml\n" + example.rstrip() + "\n```\n\n" + config_reference_markdown()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a file is out of date; write nothing")
    args = ap.parse_args(argv)
    stale = []
    for path, text in ((CLI_MD, cli_reference()), (CONFIG_MD, config_reference())):
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date: " + ", ".join(str(p) for p in stale) + " (run docs/gen_cli_reference.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
