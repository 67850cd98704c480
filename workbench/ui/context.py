"""What every tab needs: the store, the job queue and the process's devices and defaults."""
from dataclasses import dataclass, field


@dataclass
class AppContext:
    store: object  # store.Store
    queue: object  # workbench.jobs.JobQueue
    data_path: str = ""  # --data: the default data path of the Train form
    device_summary: str = ""  # e.g. "CPU only (1 logical CPU device)" or "2 GPU(s): NVIDIA H100, ..."
    gpu_names: list = field(default_factory=list)
    interrupted: list = field(default_factory=list)  # runs found left running at start-up
