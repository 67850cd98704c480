"""What every tab needs: the store, the job queue and the process's devices and defaults."""

from dataclasses import dataclass, field
from pathlib import Path

from workbench.data.datasets import keras_cache_dir
from workbench.errors import UserError


@dataclass
class AppContext:
    store: object  # store.Store
    queue: object  # workbench.jobs.queue.JobQueue
    data_path: str = ""  # --data: the default data path of the Train form
    device_summary: str = ""  # e.g. "CPU only (1 logical CPU device)" or "2 GPU(s): NVIDIA H100, ..."
    gpu_names: list = field(default_factory=list)
    interrupted: list = field(default_factory=list)  # runs found left running at start-up
    data_roots: list = field(default_factory=list)  # folders a path typed into a form may point into
    cluster_summary: object = None  # with --ray: a function giving "Ray cluster: 2 nodes, 0 GPUs, 4 CPUs" now
    studies: dict = field(default_factory=dict)  # study name -> its workbench.jobs.study.StudyDriver in this process

    def check_path(self, value: str, what: str = "data path") -> str:
        """Refuse a path typed into the page that leads outside the allowed folders (`../` and symlinks
        are resolved first): someone with the page must not make the server read arbitrary files."""
        if not value:
            return value
        resolved = Path(value).expanduser().resolve()
        roots = [Path(r).expanduser().resolve() for r in self.data_roots]
        if any(resolved == root or root in resolved.parents for root in roots):
            return str(resolved)
        allowed = ", ".join(str(r) for r in roots) or "none"
        raise UserError(
            f"{what} {value} is outside the folders this app may read ({allowed}); start the app with "
            "--data-root FOLDER to allow another one"
        )


def default_data_roots(data_path: str, store_path, extra=()) -> list:
    """--data's folder, the store's folder, Keras' dataset cache, and any --data-root."""
    roots = []
    if data_path:
        path = Path(data_path).expanduser().resolve()
        roots.append(path if path.is_dir() else path.parent)
    roots += [Path(store_path).resolve().parent, keras_cache_dir(), *[Path(r) for r in extra]]
    return [str(r) for r in dict.fromkeys(roots)]
