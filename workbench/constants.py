"""Names the whole workbench shares, each defined once: run statuses, run kinds, CIFAR class names.

A leaf module (it imports nothing), so `store/` may import it beside `workbench.errors`.
"""

# --- run statuses: the lifecycle queued -> running -> one of the finished ones -------------------
ACTIVE_STATUSES = ("queued", "running")  # a job owns the run (or did, if its process died)
FINISHED_STATUSES = ("completed", "failed", "cancelled", "interrupted", "diverged")
RUN_STATUSES = ACTIVE_STATUSES + FINISHED_STATUSES
# What `resume` (and a preset's rerun) may continue from the last checkpoint.
RESUMABLE_STATUSES = ("interrupted", "cancelled", "failed", "diverged")

# --- what an active run's job is doing (runs.phase; none while it waits in the queue) -------------
PREPARING = "preparing"  # the job's process started: importing TensorFlow, loading data, building the model
TRAINING = "training"
EVAL_EPOCH = "validating"  # the validation at the end of each epoch (its batches: runs.val_steps)
EVAL_VALIDATION, EVAL_TEST = "evaluating validation", "evaluating test"  # the final predictions
PHASES = (PREPARING, TRAINING, EVAL_EPOCH, EVAL_VALIDATION, EVAL_TEST)

# --- run kinds: which spec a run's stored JSON is ------------------------------------------------
SCRATCH = "scratch"  # a model from the zoo trained from random initialisation (RunSpec)
FINETUNE = "finetune"  # an ImageNet backbone with a new head (FinetuneSpec)
RUN_KINDS = (SCRATCH, FINETUNE)

# --- datasets ----------------------------------------------------------------------------------
# The official order (batches.meta of the CIFAR-10 archive): label i is CIFAR10_CLASSES[i].
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
