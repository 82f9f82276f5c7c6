"""The ``latentseg`` command line (Typer), installed as ``latentseg.cli``."""
