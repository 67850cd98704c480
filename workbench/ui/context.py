"""What every tab needs: the store, the job queue and the process's devices and defaults."""

from dataclasses import dataclass, field
from pathlib import Path

from workbench.constants import AuditAction
from workbench.data.datasets import keras_cache_dir
from workbench.errors import UserError
from workbench.users import Accounts, User, check_may_change


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
    accounts: Accounts | None = None  # --auth / --auth-file: who may log in, with their roles; None: no login

    def user(self) -> User:
        """Who does what the running event handler does: the login of the browser that sent the event (Gradio's
        `request.username`), or, on a page without a login, the OS user who started the app (an admin).

        Read from Gradio's context for the event, the same `Request` Gradio passes to a parameter typed
        `gr.Request`: the page's handlers take their inputs as `*values`, where such a parameter has no place."""
        from gradio.context import LocalContext  # noqa: PLC0415 - Gradio: the page's modules import it already

        request = LocalContext.request.get(None)
        name = getattr(request, "username", None)
        return (self.accounts or Accounts()).user(name)

    def check_owner(self, owner: str | None, action: str, what: str) -> User:
        """The user, refused (UserError, nothing changed) when a member acts on what someone else made."""
        user = self.user()
        try:
            check_may_change(user, owner, action, what)
        except UserError as exc:
            self.store.record(user.name, AuditAction.REFUSED, what, f"{action}: {exc}")  # type: ignore[attr-defined]
            raise
        return user

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
