"""Names the whole workbench shares, each defined once: run statuses, phases and kinds, CIFAR class names,
the file a run's class names are stored in.

A leaf module (it imports nothing of ours), so `store/` may import it beside `workbench.errors`.

Statuses, phases and kinds are `StrEnum`s: a member *is* its string (`RunStatus.COMPLETED ==
"completed"`, `str()`, f-strings, `json.dumps` and SQLite all give the plain value), so rows read back
from the store as plain `str` compare equal to the members. Code names the members, never the bare
strings (tests/test_layout.py checks that).
"""

from enum import StrEnum


# --- run statuses: the lifecycle queued -> running -> one of the finished ones -------------------
class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    DIVERGED = "diverged"
    PRUNED = "pruned"  # a study's pruner stopped it after an epoch (workbench.jobs.study); its checkpoint is kept


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)  # a job owns the run (or did, if its process died)
FINISHED_STATUSES = (
    RunStatus.COMPLETED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.INTERRUPTED,
    RunStatus.DIVERGED,
    RunStatus.PRUNED,
)
RUN_STATUSES = ACTIVE_STATUSES + FINISHED_STATUSES
# What `resume` (and a preset's rerun) may continue from the last checkpoint.
RESUMABLE_STATUSES = (
    RunStatus.INTERRUPTED,
    RunStatus.CANCELLED,
    RunStatus.FAILED,
    RunStatus.DIVERGED,
    RunStatus.PRUNED,
)


# --- Optuna studies (workbench.jobs.study): what the study as a whole is doing -----------------------
class StudyState(StrEnum):
    SEARCHING = "searching"  # its budget is not spent: a process with a job queue asks new trials
    FINISHED = "finished"  # the budget (trials or time) is spent and every trial is told
    STOPPED = "stopped"  # stopped by the user; `workbench search NAME` continues it


class TrialVerdict(StrEnum):
    """The study driver's word on a trial's run after an epoch (`store.study_trials.verdict`)."""

    CONTINUE = "continue"  # judged: train the next epoch
    PRUNE = "prune"  # judged: stop after this epoch, pruned
    TOLD = "told"  # the trial is told to Optuna: no more verdicts (a run resumed by hand trains freely)


# --- what an active run's job is doing (runs.phase; none while it waits in the queue) -------------
class RunPhase(StrEnum):
    PREPARING = "preparing"  # the job's process started: importing TensorFlow, loading data, building the model
    TRAINING = "training"
    EVAL_EPOCH = "validating"  # the validation at the end of each epoch (its batches: runs.val_steps)
    EVAL_VALIDATION = "evaluating validation"  # the final predictions
    EVAL_TEST = "evaluating test"
    EVAL_HOLDOUT = "evaluating held-out fold"  # a cross-validation run's fold of the training split (`oof`)


PHASES = tuple(RunPhase)


# --- run kinds: which spec a run's stored JSON is ------------------------------------------------
class RunKind(StrEnum):
    SCRATCH = "scratch"  # a model from the zoo trained from random initialisation (RunSpec)
    FINETUNE = "finetune"  # an ImageNet backbone with a new head (FinetuneSpec)
    DISTILL = "distill"  # a zoo model taught by a saved ensemble or a run (DistillSpec)


RUN_KINDS = tuple(RunKind)


# --- results derived from a run's training, each a run row of its own (runs.derived) ---------------------
class Derived(StrEnum):
    SNAPSHOT = "snapshot"  # the model at the end of a cosine cycle (`--snapshots M`): "snapshot 1".."snapshot M"
    AVERAGED = "averaged"  # the weights averaged over the last K epochs, BatchNorm recomputed (`--average-last K`)


def snapshot_label(number: int) -> str:
    return f"{Derived.SNAPSHOT} {int(number)}"


# --- how a distillation run's teacher scores the training images (DistillSpec.distill_mode) --------
class DistillMode(StrEnum):
    ONLINE = "online"  # the teachers score the very augmented batch the student sees, every step
    CACHED = "cached"  # the teachers' outputs on the un-augmented training images, computed once and stored


DISTILL_MODES = tuple(DistillMode)

# --- datasets ----------------------------------------------------------------------------------
# The official order (batches.meta of the CIFAR-10 archive): label i is CIFAR10_CLASSES[i].
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# CIFAR-100's 100 fine labels in the official order (the archive's meta: fine_label_names, alphabetical).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

# --- a run's files folder ---------------------------------------------------------------------------
# How pixels reach the run's model (written when training starts, `workbench.training.checkpoint`), with
# its dataset's class names: here, below training, so every tab may read the names (`workbench.data.classes`).
PREPROCESSING = "preprocessing.json"


# --- who may do what on a shared page (`workbench.users`), and what the audit trail records (`store.audit`) --
class Role(StrEnum):
    ADMIN = "admin"  # may cancel, archive or delete anything
    MEMBER = "member"  # only what they made


ROLES = tuple(Role)


class AuditAction(StrEnum):
    QUEUE = "queue"
    CANCEL = "cancel"
    RESUME = "resume"
    DELETE = "delete"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    EXPORT = "export"
    SAVE_ENSEMBLE = "save ensemble"
    DELETE_ENSEMBLE = "delete ensemble"
    REVIEW = "review"  # notes and tags written on a run
    LOGIN_FAILED = "login failed"
    REFUSED = "refused"  # a member's action on what another made, refused
    START_STUDY = "start study"  # an Optuna study (workbench.jobs.study); its trials are queued as its starter's
    STOP_STUDY = "stop study"
    CONTINUE_STUDY = "continue study"


AUDIT_ACTIONS = tuple(AuditAction)


# --- reviews of given labels (`store.reviews`, the Errors tab's label review, `reviews=` when training) ----
class Verdict(StrEnum):
    LABEL_ERROR = "label error"  # the given label is wrong (no better one named)
    CORRECT = "correct"
    UNSURE = "unsure"
    RELABEL = "relabel"  # wrong, and the right class is the review's `label`


VERDICTS = tuple(Verdict)


class ReviewUse(StrEnum):
    """The dataset option `reviews=`: what training does with the training images' reviews."""

    EXCLUDE = "exclude"  # drop images marked label error or relabel
    RELABEL = "relabel"  # train relabelled images with their new class; drop those marked label error only


REVIEW_USES = tuple(ReviewUse)

# The parts of a dataset as it is distributed; reviews are keyed by these (a run's validation split is part
# of the official training set, its rows are mapped back to their positions there).
DATASET_PARTS = ("train", "test")
