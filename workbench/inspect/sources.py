"""What a source (a completed run, a saved ensemble of runs, or a cross-validation request's out-of-fold
matrix) predicts, and on which images.

    cache = {}                                            # one per session: datasets and split images
    source = load_source(store, lab, "run:7", "test", cache)   # or "ensemble:2", or "cv:NAME" with split "train"
    images = split_images(store, source.image_run, "test", cache)   # uint8 [N, 32, 32, 3], row i <-> probs[i]

Stored logits carry no images, only the fingerprint of the labels they were computed against. The images
are rebuilt from the run's stored spec by the function training chose them with (validation:
`workbench.data.split.split_arrays(dataset, val_size, split_seed)`; test: `dataset.x_test`), and the
labels of the rebuilt images must hash to the stored fingerprint: otherwise the dataset file changed (or
the split code did) and showing the images would put wrong pictures beside the predictions, so
`split_images` refuses with a UserError saying so.

A cross-validation request (`cv:NAME`, `workbench.inspect.crossval`) has one split, the training split
("train"): its K runs' held-out folds stitched into one matrix whose row i is position i of the training split
as `split_arrays` makes it before any fold is held out (a fold run's own spec would drop its fold). Its images
are that split's, checked against each fold's stored held-out labels; a run or an ensemble has no out-of-sample
training predictions, so "train" is refused for them, as val and test are for a cv source.
"""

from dataclasses import dataclass, field

import numpy as np

from workbench.constants import RunStatus
from workbench.ensemble import lab as ensemble_lab
from workbench.ensemble.calibration import softmax
from workbench.errors import UserError, choose
from workbench.inspect import crossval
from workbench.inspect.source_images import SPLITS, TRAIN, class_names_of, split_images, training_split

KINDS = ("run", "ensemble")
CV = "cv"  # a cross-validation request's key: "cv:NAME"


@dataclass
class Source:
    kind: str  # "run", "ensemble" or "cv"
    id: int  # a cv source's: its first fold's run
    name: str
    probs: np.ndarray  # float64 [N, K]: softmax of the run's logits, the ensemble's combination, or out of fold
    labels: np.ndarray  # int64 [N]
    class_names: list
    split: str  # "val" or "test"; "train" for a cv source
    members: dict = field(default_factory=dict)  # ensembles: {run_id: member probs [N, K]} (as combined)
    member_names: dict = field(default_factory=dict)  # ensembles: {run_id: run name}; cv: its fold runs
    image_run: int = 0  # the run whose spec gives the images (an ensemble's first member)
    images_error: str | None = None  # why the images cannot be shown, when they cannot

    @property
    def key(self) -> str:
        return f"{CV}:{self.name}" if self.kind == CV else source_key(self.kind, self.id)

    @property
    def title(self) -> str:
        """ "run 7 (name)", "ensemble 2 (name)" or "cross-validation NAME (runs 3-4)"."""
        if self.kind == CV:
            return f"cross-validation {self.name} (runs {', '.join(map(str, sorted(self.member_names)))})"
        return f"{self.kind} {self.id} ({self.name})"

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1]


# A source's key: "run:ID", "ensemble:ID" or "cv:NAME". Runs and saved ensembles share the Errors and Predict tabs'
# dropdowns (cross-validation requests the Errors tab's only), whose values are these keys; they are written by
# `source_key` (`cv_key`) and read by `parse_key` only.
def source_key(kind: str, number: int) -> str:
    """The key of run `number` ("run") or saved ensemble `number` ("ensemble")."""
    return f"{choose('source kind', kind, KINDS)}:{int(number)}"


def cv_key(name: str) -> str:
    """The key of cross-validation request `name`'s out-of-fold matrix."""
    return f"{CV}:{name}"


def parse_key(key: str) -> tuple:
    """("run" | "ensemble", id) from "run:ID" or "ensemble:ID" (`source_key`); ("cv", NAME) from "cv:NAME"."""
    kind, _, number = str(key or "").strip().partition(":")
    if kind == CV and number.strip():
        return CV, number.strip()
    if kind not in KINDS or not number.strip().isdigit():
        raise UserError(
            f"unknown source {key!r}; choose a run (run:ID), a saved ensemble (ensemble:ID) or a cross-validation "
            "request (cv:NAME)"
        )
    return kind, int(number)


def splits_of(key: str) -> tuple:
    """The splits source `key` has out-of-sample predictions for: ("train",) for cv:NAME, else ("val", "test")."""
    return (TRAIN,) if parse_key(key)[0] == CV else SPLITS


def check_split(key: str, split: str) -> str:
    """`split`, when source `key` has it (`splits_of`); UserError saying which it has otherwise."""
    kind, number = parse_key(key)
    if kind == CV and split != TRAIN:
        raise UserError(
            f"cv:{number} is a cross-validation request's out-of-fold matrix of the training split: choose the "
            f"training split for it (or one of its runs for the {split} split)"
        )
    if kind != CV and split == TRAIN:
        raise UserError(
            f"{kind} {number}'s predictions on its own training images are not out-of-sample: the training split "
            "is a cross-validation request's (cv:NAME, queued with `workbench crossval --folds 5 ...`); choose "
            "val or test for a run or an ensemble"
        )
    return choose("split", split, splits_of(key))


def load_source(store, lab, key: str, split: str, cache: dict | None = None) -> Source:
    """The source's probabilities and labels on `split`, its class names (from its dataset) and,
    in `images_error`, why its images cannot be shown (None when they can: they are then in `cache`)."""
    kind, number = parse_key(key)
    split = check_split(key, split)
    cache = {} if cache is None else cache
    if kind == CV:
        source = _cv_source(store, str(number), cache)
    elif kind == "run":
        run = store.get_run(number)
        if split not in store.prediction_splits(number):
            raise UserError(
                f"run {number} ({run['status']}) has no stored predictions for the {split} split; "
                "only completed runs can be browsed"
            )
        probs = softmax(store.load_logits(number, split)).astype(np.float64)
        source = Source(
            "run", number, run["name"], probs, store.load_labels(number, split), [], split, image_run=number
        )
    else:
        ensemble = store.get_ensemble(number)
        if not ensemble["members"]:
            raise UserError(f"ensemble {number} ({ensemble['name']}) has no members")
        for run_id in ensemble["members"]:
            try:
                store.get_run(run_id)
            except UserError:
                raise UserError(
                    f"ensemble {number} ({ensemble['name']}) uses run {run_id}, which was deleted; "
                    "it can no longer be browsed"
                ) from None
        probs, labels = ensemble_lab.ensemble_probs(lab, ensemble, split)
        members = lab.load(ensemble["members"])
        member_probs = ensemble_lab.member_probs(members, split, ensemble_lab.settings_of(ensemble))
        source = Source(
            "ensemble",
            number,
            ensemble["name"],
            np.asarray(probs, np.float64),
            labels,
            [],
            split,
            members={r: member_probs[i] for i, r in enumerate(members.ids)},
            member_names=dict(zip(members.ids, members.names)),
            image_run=members.ids[0],
        )
    source.labels = np.asarray(source.labels, np.int64)
    try:
        split_images(store, source.image_run, split, cache)
    except UserError as exc:
        source.images_error = str(exc)
    source.class_names = class_names_of(store, source.image_run, cache, source.num_classes)
    return source


def _cv_source(store, name: str, cache: dict) -> Source:
    """The out-of-fold source of request `name`; its training split's labels must be those stitched, row for row."""
    oof = crossval.stitch(store, name)
    first = int(oof.runs[0]["id"])
    source = Source(
        CV,
        first,
        name,
        softmax(oof.logits).astype(np.float64),
        oof.labels,
        [],
        TRAIN,
        member_names={int(r["id"]): r["name"] for r in oof.runs},
        image_run=first,
    )
    try:
        for run in oof.runs:  # each fold's stored held-out labels against the rebuilt split's rows of that fold
            split_images(store, int(run["id"]), TRAIN, cache)
        _, labels = training_split(store, first, cache)
        if not np.array_equal(labels, oof.labels):
            raise UserError(
                f"the training split rebuilt from run {first}'s spec does not match cv:{name}'s stitched labels: "
                "its runs were not trained on one training split"
            )
    except UserError as exc:
        source.images_error = str(exc)
    return source


def source_choices(store, cv: bool = False) -> list:
    """[(label, key)] of completed runs with stored val or test predictions, then saved ensembles, then (`cv`)
    the cross-validation requests whose K runs all completed."""
    choices = []
    for run in store.list_runs(status=RunStatus.COMPLETED):
        if not set(store.prediction_splits(run["id"])) & set(SPLITS):
            continue
        accuracy = run.get("test_accuracy")
        label = f"run {run['id']} · {run['name']}" + (f" (test {accuracy:.1%})" if accuracy is not None else "")
        choices.append((label, source_key("run", run["id"])))
    for ensemble in store.list_ensembles():
        accuracy = ensemble.get("test_accuracy")
        label = f"ensemble {ensemble['id']} · {ensemble['name']} ({len(ensemble['members'])} runs"
        label += f", test {accuracy:.1%})" if accuracy is not None else ")"
        choices.append((label, source_key("ensemble", ensemble["id"])))
    if cv:
        groups = crossval.cv_groups(store)
        for name in sorted(crossval.complete_groups(store)):
            runs = groups[name]
            label = f"cross-validation {name} ({len(runs)} runs: {runs[0]['id']}-{runs[-1]['id']}, training split)"
            choices.append((label, cv_key(name)))
    return choices
