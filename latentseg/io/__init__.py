"""Reading surveys: files and in-memory tables into a validated :class:`~latentseg.io.survey.Survey`.

>>> from latentseg.io import read_survey, survey_from_frame
"""

from __future__ import annotations

from latentseg.io.readers import read_survey, read_table, survey_from_frame, write_table

__all__ = ["read_survey", "survey_from_frame", "read_table", "write_table"]
