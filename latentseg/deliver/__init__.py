"""What leaves latentseg: saved models, assignment of new respondents, the report and its figures."""
