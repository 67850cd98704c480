"""Predictions of a completed run or a saved ensemble on pictures: top-5 and class-activation maps.

    predictor = Predictor(store)                          # one per process: its models stay loaded
    pictures, refusals = read_uploads(paths, predictor.image_size("run:7"))
    results = predictor.predict("ensemble:2", pictures)   # one Prediction per picture

A run's probabilities are the softmax of its model's logits. An ensemble combines its members as it
was saved (`workbench.ensemble.lab`: weights, probabilities or logits, vote, the saved temperatures,
flip test-time augmentation), so a test image gets the probabilities the Errors tab shows for it. The
map of each model explains the source's top-1 class (for an ensemble: the ensemble's, in every member).
"""

from dataclasses import dataclass, field

import numpy as np

from workbench.data import classes
from workbench.ensemble import combine as ens
from workbench.ensemble import lab as ensemble_lab
from workbench.ensemble.calibration import softmax
from workbench.errors import UserError
from workbench.inspect import analysis
from workbench.inspect import sources as sv
from workbench.predict.gradcam import GradCam, overlay
from workbench.predict.images import MAX_IMAGES, Picture, from_array
from workbench.predict.models import CHECKPOINT, ModelCache


@dataclass
class Prediction:
    picture: Picture
    probs: list  # [(label, float64 [K] probabilities)]: the source first, then an ensemble's members
    overlays: list  # [(label, uint8 [D, D, 3])]: each model's map of the source's top-1 class
    class_names: list
    true_class: str | None = None  # test images only

    def top5(self, k: int = 5) -> list:
        """[(label, [(class name, probability)])] for every entry of `probs`."""
        return [(label, analysis.top5(p, self.class_names, k)) for label, p in self.probs]


@dataclass
class _Plan:
    """What a source key means: its models and, for an ensemble, how they combine."""

    label: str
    run_ids: list
    names: list
    weights: list = field(default_factory=list)
    settings: ensemble_lab.Settings | None = None  # ensembles only
    temperatures: list | None = None


class Predictor:
    def __init__(self, store, models: ModelCache | None = None):
        self.store = store
        self.models = models or ModelCache(store)
        self._images: dict = {}  # inspect.sources' cache: test images rebuilt from a run's dataset

    def choices(self) -> list:
        """[(label, key)] of sources that can predict: completed runs with a checkpoint, and saved ensembles
        whose members all have one (a member without cannot predict a new picture)."""

        def has_checkpoint(run_id) -> bool:
            return (self.store.run_dir(run_id) / CHECKPOINT).exists()

        kept = []
        for label, key in sv.source_choices(self.store):
            kind, number = sv.parse_key(key)
            members = [number] if kind == "run" else self.store.get_ensemble(number)["members"]
            if all(has_checkpoint(run_id) for run_id in members):
                kept.append((label, key))
        return kept

    def _plan(self, key) -> _Plan:
        kind, number = sv.parse_key(key)
        if kind == sv.CV:
            raise UserError(f"{key} is a cross-validation request's stored predictions: choose a run or an ensemble")
        if kind == "run":
            run = self.store.get_run(number)
            return _Plan(f"run {number}: {run['name']}", [number], [run["name"]])
        ensemble = self.store.get_ensemble(number)
        names = []
        for run_id in ensemble["members"]:
            try:
                names.append(self.store.get_run(run_id)["name"])
            except UserError:
                raise UserError(
                    f"ensemble {number} ({ensemble['name']}) uses run {run_id}, which was deleted"
                ) from None
        settings = ensemble_lab.settings_of(ensemble)
        temperatures = ensemble.get("temperatures") if settings.temperature else None
        return _Plan(
            f"ensemble {number}: {ensemble['name']}",
            list(ensemble["members"]),
            names,
            list(ensemble["weights"]),
            settings,
            temperatures,
        )

    def image_size(self, key) -> int:
        """The size pictures are brought to before the run's pipeline (its dataset's: 32 for CIFAR)."""
        return self.models.get(self._plan(key).run_ids[0]).preprocessing.image_size

    def class_names(self, key) -> list:
        """The class names the source predicts (its first run's)."""
        return self._class_names(self._plan(key).run_ids[0])

    def _class_names(self, run_id: int) -> list:
        """The run's class names (`workbench.data.classes`), those its model was loaded with among them."""
        loaded = self.models.get(run_id)
        return classes.class_names(self.store, loaded.run, len(loaded.class_names), found=loaded.class_names)

    @staticmethod
    def _cam(loaded) -> GradCam:
        if loaded.gradcam is None:  # kept with the loaded model: the cache drops both together
            loaded.gradcam = GradCam(loaded.model)
        return loaded.gradcam

    def predict(self, key, pictures: list, true_classes=None) -> list:
        """One Prediction per picture (at most MAX_IMAGES)."""
        if not pictures:
            raise UserError("no pictures to predict: upload images or pick test images")
        if len(pictures) > MAX_IMAGES:
            raise UserError(f"{len(pictures)} pictures; predict at most {MAX_IMAGES} at a time")
        plan = self._plan(key)
        loaded = [self.models.get(run_id) for run_id in plan.run_ids]
        names = self._class_names(plan.run_ids[0])
        pixels = np.stack([p.pixels for p in pictures])
        if pixels.shape[1:] != tuple(loaded[0].preprocessing.image_shape):
            raise UserError(
                f"pictures of shape {pixels.shape[1:]}; {plan.label} takes {tuple(loaded[0].preprocessing.image_shape)}"
            )
        if len(loaded) == 1:  # a run: logits and maps in one pass
            logits, maps = self._cam(loaded[0])(loaded[0].preprocessing.apply(pixels))
            entries = [[(plan.label, p)] for p in softmax(logits.astype(np.float64))]
            maps_per_model = [maps]
        else:
            entries, maps_per_model = self._ensemble(plan, loaded, pixels)
        results = []
        for i, picture in enumerate(pictures):
            top = names[int(np.argmax(entries[i][0][1]))]
            overlays = [
                (
                    f"{label}: {top}" + ("" if maps[i].max() > 0 else " (empty map: no region raises it)"),
                    overlay(picture.display, maps[i]),
                )
                for label, maps in zip(self._map_labels(plan), maps_per_model)
            ]
            true = None if true_classes is None else true_classes[i]
            results.append(Prediction(picture, entries[i], overlays, names, true))
        return results

    @staticmethod
    def _map_labels(plan: _Plan) -> list:
        if len(plan.run_ids) == 1:
            return [plan.label]
        return [f"member {r}: {n}" for r, n in zip(plan.run_ids, plan.names)]

    def _ensemble(self, plan: _Plan, loaded: list, pixels: np.ndarray):
        sizes = {len(m.class_names) for m in loaded}
        if len(sizes) != 1:
            raise UserError(f"{plan.label}: its members predict different numbers of classes")
        logits = [m.logits(pixels) for m in loaded]
        probs = ens.member_probs(logits, plan.temperatures)
        assert plan.settings is not None  # an ensemble's plan has its settings
        if plan.settings.tta:
            probs = (probs + ens.member_probs([m.logits(pixels, flip=True) for m in loaded], plan.temperatures)) / 2
        combined = ensemble_lab.combine(probs, plan.weights, plan.settings)
        top = np.argmax(combined, axis=1).astype(np.int32)
        maps = [self._cam(m)(m.preprocessing.apply(pixels), top)[1] for m in loaded]
        entries = [
            [(plan.label, combined[i])]
            + [(f"member {r}: {n}", probs[j, i]) for j, (r, n) in enumerate(zip(plan.run_ids, plan.names))]
            for i in range(len(pixels))
        ]
        return entries, maps

    # --- test images ----------------------------------------------------------------------------

    def test_images(self, key, indices) -> tuple:
        """(pictures, true class names) of the source's test images at `indices`, rebuilt from its
        (first) run's dataset and checked against its stored labels (`workbench.inspect.sources`)."""
        plan = self._plan(key)
        run_id = plan.run_ids[0]
        images = sv.split_images(self.store, run_id, "test", self._images)
        labels = self.store.load_labels(run_id, "test")
        names = self._class_names(run_id)
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < len(images)]
        if bad:
            raise UserError(
                f"test image {bad[0]} does not exist; the test set has {len(images):,} images (0 to "
                f"{len(images) - 1:,})"
            )
        pictures = [from_array(images[i], f"test #{i}") for i in indices]
        return pictures, [names[labels[i]] for i in indices]

    def class_indices(self, key, class_name: str, count: int, seed: int = 0) -> list:
        """`count` test image indices of class `class_name`, chosen at random by `seed`."""
        plan = self._plan(key)
        names = self.class_names(key)
        if class_name not in names:
            raise UserError(f"unknown class {class_name!r}; choose one of {', '.join(names)}")
        labels = self.store.load_labels(plan.run_ids[0], "test")
        members = np.flatnonzero(labels == names.index(class_name))
        chosen = np.random.default_rng(seed).permutation(members)[: max(1, int(count))]
        return sorted(int(i) for i in chosen)


def parse_indices(text) -> list:
    """ "3, 17 40-42" -> [3, 17, 40, 41, 42]; a UserError for anything else."""
    indices: list[int] = []
    for part in str(text or "").replace(",", " ").split():
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise UserError(f"{part!r} is not a test image index; write numbers like 3, 17, 40-42")
        indices.extend(range(int(first), int(last) + 1) if dash else [int(first)])
        if len(indices) > MAX_IMAGES:
            raise UserError(f"more than {MAX_IMAGES} test images; pick at most {MAX_IMAGES} at a time")
    return indices
