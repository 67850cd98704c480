"""Label quality from stored predictions (issue 24): cleanlab's confident learning on a source's out-of-sample
probabilities.

    issues = label_issues(store, lab, "run:7", "test")        # or "ensemble:2", or "cv:NAME" with split "train"
    issues.order()                                             # most likely label errors first
    issues.rows(top=100)                                       # index, given, suggested, score, flagged, ...

Each image of the split gets cleanlab's label quality score (`cleanlab.rank.get_label_quality_scores`: the
probability the source gives its given label, "self_confidence"; low = suspicious), the suggested label (the
source's most probable class) and whether confident learning flags it (`cleanlab.filter.find_label_issues`,
its default "prune_by_noise_rate"). Only out-of-sample predictions qualify: a run's validation and test
splits, an ensemble's (combined as saved, with its TTA, `workbench.inspect.sources`), and the training split's
out-of-fold matrix of a cross-validation request (`workbench.inspect.crossval`). Results are cached in the
store per (source, split) with a fingerprint of the probabilities and labels they came from.

Rows map to the dataset's own parts for reviews: test rows are the test set's positions; validation and
training rows are positions in the official training set (`official`), so a review made from any source is
found by every other one.
"""

import hashlib
import io
from dataclasses import dataclass

import numpy as np

from workbench.data.reviewed import dataset_identity
from workbench.data.split import make_split, subset_of
from workbench.errors import UserError, choose
from workbench.inspect.source_images import SPLITS, data_settings, run_dataset, split_images
from workbench.inspect.sources import load_source

TRAIN = "train"  # the training split: a cross-validation request's out-of-fold matrix only
CV_PREFIX = "cv:"


@dataclass
class LabelIssues:
    source: str  # the source's key ("run:7", "ensemble:2", "cv:NAME")
    name: str
    split: str  # "val", "test" or "train"
    labels: np.ndarray  # int64 [N]: the given labels
    suggested: np.ndarray  # int64 [N]: the source's most probable class
    score: np.ndarray  # float64 [N]: cleanlab's label quality score (0..1, low: likely wrong)
    flagged: np.ndarray  # bool [N]: confident learning's label issues
    class_names: list
    dataset: str  # the dataset's identity (`workbench.data.reviewed.dataset_identity`): what reviews are keyed by
    image_run: int  # the run whose spec rebuilds the images
    probs: np.ndarray  # float64 [N, K]
    official: np.ndarray | None = None  # position of each row in the dataset's part (None until `map_rows`)
    files: list | None = None  # each row's file name, where the dataset has them (`map_rows`)

    @property
    def part(self) -> str:
        """The dataset's part the rows are images of: test rows are the test set's, val and train rows the
        official training set's."""
        return "test" if self.split == "test" else "train"

    def order(self) -> np.ndarray:
        """Row numbers, most likely label errors first (lowest score; ties by position)."""
        return np.argsort(self.score, kind="stable")

    def rows(self, top: int | None = None, class_names: bool = True) -> list:
        """[{index, given, suggested, score, flagged}] in `order()`, the first `top` (None: all)."""
        names = self.class_names if class_names else None
        picked = self.order()[: top if top else None]
        return [
            {
                "index": int(i),
                "given": names[self.labels[i]] if names else int(self.labels[i]),
                "suggested": names[self.suggested[i]] if names else int(self.suggested[i]),
                "score": round(float(self.score[i]), 6),
                "flagged": bool(self.flagged[i]),
            }
            for i in picked
        ]


def quality(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, flagged) by cleanlab for `probs` [N, K] (out-of-sample) and the given `labels` [N]."""
    from cleanlab.filter import find_label_issues  # noqa: PLC0415 - cleanlab: scikit-learn and pandas at import
    from cleanlab.rank import get_label_quality_scores  # noqa: PLC0415 - cleanlab, as above

    probs = np.asarray(probs, np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    labels = np.asarray(labels, np.int64)
    if probs.ndim != 2 or len(labels) != len(probs):
        raise UserError(f"{len(labels)} labels for probabilities of shape {list(probs.shape)}")
    score = np.asarray(get_label_quality_scores(labels, probs), np.float64)
    # n_jobs=1: cleanlab's default forks a process pool, which costs more than it saves at 10,000 images and
    # must not fork a process that holds TensorFlow's and Gradio's threads.
    flagged = np.asarray(find_label_issues(labels, probs, n_jobs=1), bool)
    return score, flagged


def _fingerprint(probs: np.ndarray, labels: np.ndarray) -> str:
    from cleanlab import __version__  # noqa: PLC0415 - cleanlab, as in `quality`

    digest = hashlib.sha256(np.ascontiguousarray(probs, np.float32).tobytes())
    digest.update(np.ascontiguousarray(labels, np.int64).tobytes())
    digest.update(f"cleanlab {__version__}".encode())
    return digest.hexdigest()[:20]


def cached_quality(store, source: str, split: str, probs: np.ndarray, labels: np.ndarray) -> tuple:
    """`quality`, from the store's cache when these probabilities and labels were scored before."""
    fingerprint = _fingerprint(probs, labels)
    blob = store.cached_label_quality(source, split, fingerprint)
    if blob is not None:
        saved = np.load(io.BytesIO(blob))
        return saved["score"], saved["flagged"]
    score, flagged = quality(probs, labels)
    buffer = io.BytesIO()
    np.savez(buffer, score=score, flagged=flagged)
    store.cache_label_quality(source, split, fingerprint, buffer.getvalue())
    return score, flagged


def _identity(store, run_id: int) -> str:
    run = store.get_run(run_id)
    return dataset_identity(data_settings(run)["dataset"], store.prediction_info(run_id, "test")["labels_hash"])


def label_issues(store, lab, key: str, split: str, cache: dict | None = None) -> LabelIssues:
    """cleanlab's answer for source `key` on `split` (see the module docstring); UserError for a split whose
    predictions are not out-of-sample for that source."""
    cache = {} if cache is None else cache
    if str(key).startswith(CV_PREFIX) and split != TRAIN:
        raise UserError(
            f"a cross-validation request's source is its out-of-fold matrix of the training split: "
            f"use --split train (or one of its runs, run:ID, for {split})"
        )
    choose("split", split, SPLITS + (TRAIN,))
    if split == TRAIN and not str(key).startswith(CV_PREFIX):
        raise UserError(
            "a run's or ensemble's predictions on its own training images are not out-of-sample; the training "
            "split's label quality needs a cross-validation request's out-of-fold matrix (source cv:NAME, "
            "queued with `workbench crossval --folds 5 ...`)"
        )
    source = load_source(store, lab, key, split, cache)  # a cv:NAME source: the stitched out-of-fold matrix
    probs, labels, name, image_run = source.probs, source.labels, source.name, source.image_run
    class_names = source.class_names
    score, flagged = cached_quality(store, str(key), split, probs, labels)
    return LabelIssues(
        str(key),
        name,
        split,
        np.asarray(labels, np.int64),
        probs.argmax(axis=1),
        score,
        flagged,
        list(class_names),
        _identity(store, image_run),
        image_run,
        probs,
    )


def map_rows(store, issues: LabelIssues, cache: dict) -> LabelIssues:
    """Fill `issues.official` (each row's position in the dataset's part) and register that part for reviews
    (its labels, count and classes). The test split needs no data; val and train rows need the dataset's
    training labels (loaded, or taken from `cache`)."""
    if issues.split == "test":
        issues.official = np.arange(len(issues.labels))
        try:  # only for its file names: the test rows are the test set's
            names = run_dataset(store, issues.image_run, cache).test_files
        except UserError:
            names = ()
        issues.files = list(names) if len(names) == len(issues.labels) else None
        store.register_review_part(
            issues.dataset,
            issues.dataset.split("/")[0],
            "test",
            issues.labels,
            num_classes=len(issues.class_names),
            files=issues.files,
        )
        return issues
    dataset = run_dataset(store, issues.image_run, cache)
    spec = store.get_run(issues.image_run)["spec"]
    split = make_split(dataset.y_train, val_size=spec.get("val_size") or None, seed=int(spec.get("split_seed") or 0))
    official = split.val_idx if issues.split == "val" else subset_of(split, int(spec.get("train_subset") or 0))
    if len(official) != len(issues.labels) or not np.array_equal(dataset.y_train[official], issues.labels):
        raise UserError(
            f"the {issues.split} rows of {issues.source} do not match its dataset's training labels: the dataset "
            "changed since it was trained; restore it to review these images"
        )
    issues.official = official
    train_files = dataset.train_files if len(dataset.train_files) == len(dataset.y_train) else None
    issues.files = [train_files[i] for i in official] if train_files else None
    store.register_review_part(
        issues.dataset, dataset.name, "train", dataset.y_train, num_classes=len(issues.class_names), files=train_files
    )
    return issues


def issue_images(store, issues: LabelIssues, cache: dict) -> np.ndarray:
    """uint8 [N, H, W, 3]: the split's images, row for row with `issues`."""
    if issues.split in SPLITS:
        return split_images(store, issues.image_run, issues.split, cache)
    if issues.official is None:
        map_rows(store, issues, cache)
    assert issues.official is not None
    return run_dataset(store, issues.image_run, cache).x_train[issues.official]
