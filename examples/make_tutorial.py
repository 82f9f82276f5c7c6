"""Write examples/tutorial.ipynb: the bundled survey to a segment map, step by step, in a notebook.

The notebook is written without outputs or execution counts (that is how it is kept in git);
``tests/test_tutorial_notebook.py`` executes it and checks that this script writes it byte for
byte. Edit the cells here, then run ``python examples/make_tutorial.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = "tutorial.ipynb"

# (cell id, "md" or "code", source). The ids are fixed so that the file is the same every time;
# the tests find the segment map's cell by its id.
CELLS: list[tuple[str, str, str]] = [
    ("title", "md", """\
# From a survey to a segment map

This notebook walks through a needs-based segmentation of the bundled example survey,
`project_survey.csv`: 400 customers of a project-management tool rated 24 desired outcomes
of the job *manage cross-functional projects to deliver on time and on budget* (how important
each outcome is, and how satisfied they are with how they get it done today), and answered a few
profile questions (role, company size, industry, current tool, region, plan price).

The steps: read and check the file, remove unreliable answers, score every outcome's unmet need,
choose how many segments there are, fit the segments, check them with a second method, then
name, profile and size the segments and score new respondents. It runs in well under a minute.

The same job in one command, with an HTML report: `latentseg run project_survey.csv --config
latentseg.toml` (see `docs/tutorial.md`)."""),
    ("imports", "code", """\
import latentseg as ls
from latentseg.choose.selection import select
from latentseg.config import select_options
from latentseg.decide.core import decide
from latentseg.deliver import plots
from latentseg.models.families import family
from latentseg.prepare.core import prepare, resolve_config"""),
    ("settings-md", "md", """\
## 1. The settings

`latentseg.toml` holds the project's choices: where the outcome statements are, the scales the
questions were asked on, the cleaning rules, which models to compare and for which numbers of
segments, and which profile questions to look at. Here two of them are narrowed so that the
notebook runs quickly: 3 to 5 segments and 3 random starts per model (the defaults try 3 to 7
segments with 10 starts each)."""),
    ("settings", "code", """\
SURVEY = "project_survey.csv"
config, _ = resolve_config("latentseg.toml", {"select": {"k_min": 3, "k_max": 5}, "model": {"n_init": 3}})
seed = config["model"]["random_seed"]  # one seed: the same notebook gives the same segments
config["select"]"""),
    ("read-md", "md", """\
## 2. Read and validate the survey

Reading checks the file: every rating must be on its scale, every outcome needs both an
importance and a satisfaction column, respondent ids must be unique. A problem stops here with
one message naming the column and the rows (for example `Column 'sat_o07' has 3 values outside
the declared scale 1-10 at rows [12, 408, 977].`)."""),
    ("read", "code", """\
survey = ls.read_survey(SURVEY, config=config)
print(f"{survey.n_respondents} respondents, {survey.n_outcomes} outcomes "
      f"in {survey.outcomes['job_step'].nunique()} job steps")
print(f"importance on {survey.imp_scale}, satisfaction on {survey.sat_scale}")
print("profile columns:", ", ".join(survey.profile_columns))
for note in survey.notes:
    print("note:", note)
survey.outcomes.head()"""),
    ("clean-md", "md", """\
## 3. Clean

Some answers are not worth keeping: respondents who gave the same rating to every outcome
(straight-liners), who finished far faster than everyone else (speeders), or who left many
outcomes unrated. The cleaning report lists how many each rule removed; `cleaning.excluded`
names every excluded respondent and why."""),
    ("clean", "code", """\
clean_survey, cleaning = ls.clean(survey, **config["cleaning"])
cleaning"""),
    ("scores-md", "md", """\
## 4. Opportunity scores and the landscape

Each respondent's unmet need on each outcome is an *opportunity score*:
importance + max(importance - satisfaction, 0), both on 0-10, so 0-20 in all. The landscape is
the same for the whole sample: outcomes scoring 10 or more are underserved (15 or more:
extremely underserved), those well below are overserved."""),
    ("scores", "code", """\
scores = ls.opportunity_scores(clean_survey)  # one row per respondent, one column per outcome
landscape = ls.opportunity_landscape(clean_survey)
(landscape.sort_values("opportunity", ascending=False)
 [["outcome", "statement", "importance", "satisfaction", "opportunity", "class"]].head(8))"""),
    ("landscape-plot", "code", """\
plots.plot_landscape(landscape)"""),
    ("prepare-md", "md", """\
## 5. Prepare the model input

`prepare` does steps 2 to 4 in one call and gives every model family its input: the opportunity
scores for k-means and the Gaussian mixture, and each outcome's opportunity level (low, medium,
high) for the latent class model. It also notes anything it left out."""),
    ("prepare", "code", """\
models = config["select"]["models"]  # kmeans, gmm, lca
prepared = prepare(SURVEY, config, families=models)
print(prepared.description, "for", prepared.n, "respondents")
for note in prepared.notes:
    print("note:", note)"""),
    ("select-md", "md", """\
## 6. How many segments?

Every family is fitted for every number of segments k. Each family picks its k by its own
criterion (the k-means elbow, the lowest BIC for the mixtures) among the admissible fits: a fit
is rejected when its smallest segment is under 10% of respondents, when it is unstable on
subsamples, or (k-means) when the segments barely separate. The table marks each family's pick;
the rule below it says in words why the recommended k won."""),
    ("select", "code", """\
options = {m: family(m).options_from_config(config).options for m in models}
ks = range(config["select"]["k_min"], config["select"]["k_max"] + 1)
selection = select(prepared.numeric, models=models, k=ks, random_seed=seed, fit_options=options,
                   categorical_data=prepared.levels, **select_options(config))
selection"""),
    ("select-plot", "code", """\
plots.plot_selection(selection)"""),
    ("fit-md", "md", """\
## 7. Fit the chosen model

The configured family (a Gaussian mixture) at the recommended k. Each segment's share comes with
a 95% interval."""),
    ("fit", "code", """\
chosen = config["model"]["model"]
k = selection.recommended_k
result = ls.fit(prepared.data_for(chosen), chosen, k, random_seed=seed, **options[chosen])
result"""),
    ("compare-md", "md", """\
## 8. Do two methods agree?

k-means and latent class analysis make very different assumptions. When they put most
respondents in matching segments, the segments are in the data rather than an artefact of one
method. The crosstab shows who goes where; the disagreements are usually the respondents between
two segments."""),
    ("compare", "code", """\
comparison = ls.compare(selection.result("kmeans", k), selection.result("lca", k),
                        names=("k-means", "latent class"))
comparison"""),
    ("compare-plot", "code", """\
plots.plot_comparison(comparison)"""),
    ("decide-md", "md", """\
## 9. Decide: name, profile and size the segments

`decide` names each segment after its dominant unmet needs, compares the segments on the profile
questions (who they are, which tool they use today), estimates their sizes and market counts, and
puts it together in the segment map, with a recommendation per segment."""),
    ("segment-map", "code", """\
decisions = decide(result, prepared.scores, prepared.outcomes, prepared.profile, config,
                   reduction=prepared.reduction, source=SURVEY)
decisions.segment_map"""),
    ("map-plot-md", "md", """\
The segments on the two job steps where they differ most (bubble area: share of respondents):"""),
    ("map-plot", "code", """\
plots.plot_segment_map(decisions)"""),
    ("heatmap-md", "md", """\
Mean opportunity of every outcome in every segment; underserved cells (10 or more) are in bold:"""),
    ("heatmap", "code", """\
plots.plot_opportunity_heatmap(decisions.profiles)"""),
    ("shares-md", "md", """\
Segment sizes with their 95% intervals:"""),
    ("shares", "code", """\
plots.plot_shares(decisions.result)"""),
    ("overlays-md", "md", """\
Which profile questions tell the segments apart (a small p-value and a strong effect: the segments
differ on it; the segment map above shows how):"""),
    ("overlays", "code", """\
decisions.overlays.summary[["test", "p_value", "effect", "strength"]]"""),
    ("predict-md", "md", """\
## 10. Score new respondents

`predict_proba` gives each new respondent's probability of belonging to each segment: a
DataFrame in, a DataFrame out, indexed like the input. Five respondents stand in for a new
wave here. For a raw survey file, save the model (`ls.save_model`) and use `ls.assign` or
`latentseg assign`, which clean and score new responses exactly as at fit time."""),
    ("predict", "code", """\
segmented = decisions.result  # the fitted model, with the segments' names
new = prepared.data_for(chosen).sample(5, random_state=7)
proba = ls.predict_proba(segmented, new)
names = dict(zip(proba.columns, segmented.segment_labels))
proba.round(2).assign(segment=proba.idxmax(axis=1).map(names))"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs."""
    cells = []
    for cell_id, kind, source in CELLS:
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = cell_id
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def text() -> str:
    """The notebook file's text."""
    return nbformat.writes(build()) + "\n"


def main(out_dir: Path = HERE) -> Path:
    path = Path(out_dir) / NOTEBOOK
    path.write_text(text(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
