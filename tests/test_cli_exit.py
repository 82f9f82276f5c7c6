"""The console entry point freezes the heap when a command is over (latentseg.cli.app.main), so the
interpreter's shutdown does not walk it for cycles; the command's outcome is unchanged."""

from __future__ import annotations

import gc
import sys

import pytest

from latentseg.cli import app as cli_app


@pytest.mark.parametrize(("argv", "code"), [(["--version"], 0), (["no-such-command"], 2)])
def test_main_freezes_the_heap_after_the_command_whatever_its_exit(argv, code, monkeypatch, capsys):
    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))  # the test process itself is not frozen
    monkeypatch.setattr(sys, "argv", ["latentseg", *argv])
    with pytest.raises(SystemExit) as exc:
        cli_app.main()
    assert exc.value.code == code
    assert frozen == [True]
    if code == 0:
        assert capsys.readouterr().out.startswith("latentseg ")
