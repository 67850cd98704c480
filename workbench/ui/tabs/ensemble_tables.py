"""What the Ensemble tab shows, without Gradio: the runs that can join a selection (and why the others cannot),
the metrics and top-weights tables, the method's note, and the form's values read as `lab.Settings`.
`workbench.ui.tabs.ensemble` lays the tab out and wires it."""

import pandas as pd

from workbench.ensemble import lab
from workbench.views import runs as rd

METRIC_COLUMNS = ["source", "weight", "T", "val acc %", "val NLL", "val ECE %", "test acc %", "test NLL", "test ECE %"]
VOTE_NOTE = (
    "Majority vote: every member whose weight is above 0 casts one vote (the weights' sizes do not "
    "count); a vote gives unvoted classes probability 0, so it has no NLL."
)
TOP_ACCURACY = "val acc %"
TOP_WAITING = "weights (a grid search lists its best here)"  # the one header before there are members


def top_table(member_ids=(), rows=()) -> pd.DataFrame:
    """The top-weights table: a column per member ("w<run id>") and the validation accuracy; with no
    members one column that says what fills it. No rows gives its headers only: an empty frame without
    columns was drawn with Gradio's placeholder headers "1 2 3"."""
    columns = [*(f"w{i}" for i in member_ids), TOP_ACCURACY] if member_ids else [TOP_WAITING, TOP_ACCURACY]
    return pd.DataFrame(list(rows), columns=columns)


def member_choices(store, selected) -> tuple:
    """(the runs that can join `selected`, as dropdown choices; Markdown listing those that cannot and
    why). Runs on another validation split than the first pick leave the choices as soon as it is made;
    while the store holds several splits, every choice names its split before anything is picked."""
    everything = lab.candidates(store)
    several = len({c["split_id"] for c in everything if c["eligible"]}) > 1
    rows = lab.compatible_with(everything, selected or [])
    keep = {int(r) for r in selected or []}  # a selection stays valid until the handler reports on it
    choices = [
        rd.run_choice(c, f" (split {c['split_id']})" if several else "")
        for c in rows
        if c["eligible"] or c["id"] in keep
    ]
    lines = [f"- run {c['id']} {c['name']}: {c['reason']}" for c in rows if not c["eligible"]]
    return choices, ("**Not available to combine:**\n" + "\n".join(lines)) if lines else ""


def metrics_table(scored: dict, settings: lab.Settings) -> pd.DataFrame:
    """The ensemble's and members' figures; the weights as the sliders show them, the temperature column
    only when temperatures are applied, and a vote's NLL as "n/a" (it has none)."""
    pct = percent
    nll = lambda v: "n/a" if v is None else round(v, 4)  # noqa: E731
    val, test = scored["val"], scored["test"]
    rows = [
        [
            "ensemble",
            "",
            "",
            pct(val["accuracy"]),
            nll(val["nll"]),
            pct(val["ece"]),
            pct(test["accuracy"]),
            nll(test["nll"]),
            pct(test["ece"]),
        ]
    ]
    for m, w in zip(scored["members"], scored["weights"]):
        rows.append(
            [
                f"{m['id']}: {m['name']}",
                round(w, 3),
                round(m["temperature"], 2),
                pct(m["val_accuracy"]),
                round(m["val_nll"], 4),
                pct(m["val_ece"]),
                pct(m["test_accuracy"]),
                round(m["test_nll"], 4),
                pct(m["test_ece"]),
            ]
        )
    table = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    return table if settings.temperature else table.drop(columns="T")


def empty_metrics(settings: lab.Settings) -> pd.DataFrame:
    return pd.DataFrame(columns=[c for c in METRIC_COLUMNS if c != "T" or settings.temperature])


def method_note(settings: lab.Settings) -> str:
    return VOTE_NOTE if settings.method == "vote" else ""


def settings_of(method, space, temperature, tta, translate=False):
    return lab.Settings(
        method=method or "mean",
        space=space or "prob",
        temperature=bool(temperature),
        tta=bool(tta),
        translate=bool(translate),
    )


def settings_and_weights(method, space, temperature, tta, translate, *weights):
    """The values of `EnsembleView.settings` and then of the sliders, read into Settings and weights."""
    return settings_of(method, space, temperature, tta, translate), list(weights)


def percent(fraction) -> float | None:
    """A fraction as the tables show it: a percentage to two decimals (none stays None)."""
    return None if fraction is None else round(100 * float(fraction), 2)
