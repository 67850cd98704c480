"""CIFAR Workbench: `python app.py` opens the workbench in a browser.

python app.py [--host 127.0.0.1] [--port 7860] [--db runs/workbench.db] [--data PATH]
              [--share] [--auth user:password] [--auth-file FILE]
              [--ray HOST:PORT|local --storage FOLDER_OR_URI --retries N --ray-insecure]
"""

import argparse
import os
import sys
from pathlib import Path

from workbench.constants import AuditAction
from workbench.errors import UserError
from workbench.jobs.cluster_flags import add_arguments as add_cluster_arguments
from workbench.jobs.cluster_flags import check as check_cluster_flags
from workbench.jobs.cluster_flags import open_queue
from workbench.jobs.malloc_tuning import limit_arenas
from workbench.predict.images import MAX_FILE_BYTES
from workbench.ui.context import AppContext, default_data_roots
from workbench.users.accounts import HASH_COMMAND, build_accounts

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="CIFAR Workbench: train, compare and inspect CIFAR classifiers.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WORKBENCH_PORT", 7860)))
    parser.add_argument("--db", default=None, help="store file (default: $WORKBENCH_DB or runs/workbench.db)")
    parser.add_argument(
        "--data",
        default=os.environ.get("WORKBENCH_DATA", ""),
        help="default data path of the Train form (CIFAR archive or image folder)",
    )
    parser.add_argument(
        "--data-root",
        action="append",
        default=[],
        metavar="FOLDER",
        help="another folder the page's data paths may point into (repeatable)",
    )
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link (needs --auth)")
    parser.add_argument(
        "--auth",
        default=os.environ.get("WORKBENCH_AUTH"),
        help="user:password required to open the page (or WORKBENCH_AUTH); this user is an admin",
    )
    parser.add_argument(
        "--auth-file",
        default=os.environ.get("WORKBENCH_AUTH_FILE"),
        metavar="FILE",
        help=f"several logins, one user:hash[:role] a line (role admin or member; hashes from `{HASH_COMMAND} "
        "USER`); members may cancel, archive or delete only what they made (or WORKBENCH_AUTH_FILE)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    add_cluster_arguments(parser)  # --ray, --storage, --retries, --ray-cpus, --ray-resources: jobs on a Ray cluster
    return parser.parse_args(argv)


def check_args(args):
    """Refuse unsafe or impossible settings before anything starts. Returns the accounts (None: no login)."""
    accounts = build_accounts(args.auth, args.auth_file)  # a plain password in --auth-file is refused here
    if args.share and accounts is None:
        raise UserError(
            "--share opens a public link to a machine that trains on your GPUs: give a login with "
            "--auth user:password (or WORKBENCH_AUTH) or --auth-file FILE"
        )
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {args.port}")
    if args.data and not Path(args.data).expanduser().exists():
        raise UserError(f"--data {args.data} does not exist; give a CIFAR archive, its folder or an image folder")
    for root in args.data_root:
        if not Path(root).expanduser().is_dir():
            raise UserError(f"--data-root {root} is not a folder")
    check_cluster_flags(args)
    return accounts


def create(args, accounts=None):
    """Open the store, start the job queue and build the page (no server yet)."""
    from store import Store  # noqa: PLC0415 - pandas: sqlite_utils imports it (seconds); after the flags are checked
    from workbench.jobs.study import resume_searching  # noqa: PLC0415 - Optuna: SQLAlchemy and its samplers, seconds
    from workbench.training import devices  # noqa: PLC0415 - TensorFlow: seconds to import, after the flags are checked
    from workbench.ui.app import build_app  # noqa: PLC0415 - Gradio and TensorFlow: after the flags are checked

    store = Store(args.db) if args.db else Store()
    queue = open_queue(store, args)
    # Studies still searching when the last app stopped continue now, by the restart rule (workbench.jobs.study).
    studies = {driver.search.name: driver for driver in resume_searching(store, queue)}
    data_path = str(Path(args.data).expanduser()) if args.data else ""
    describe_cluster = getattr(queue.backend, "describe", None)  # the Ray backend's: nodes, GPUs, CPUs
    ctx = AppContext(
        store=store,
        queue=queue,
        data_path=data_path,
        device_summary=devices.describe(),
        gpu_names=queue.gpus,
        interrupted=queue.interrupted,
        data_roots=default_data_roots(data_path, store.path, args.data_root),
        cluster_summary=describe_cluster,
        studies=studies,
        accounts=accounts,
    )
    return ctx, build_app(ctx)


def login_check(ctx):
    """Gradio's login check: the accounts' answer; a refused login is written to the audit trail with the name
    typed (never the password)."""

    def check(username: str, password: str) -> bool:
        if ctx.accounts.check(username, password):
            return True
        known = username in ctx.accounts.names()
        ctx.store.record(
            str(username)[:64], AuditAction.LOGIN_FAILED, "page", "wrong password" if known else "unknown user"
        )
        return False

    return check


def startup_text(local_url: str, share_url) -> str:
    """Where the page is, and how this app shares it (Gradio prints the public link itself)."""
    if share_url:
        return f"* Running on local URL:  {local_url}"
    return (
        f"* Running on local URL:  {local_url}\n"
        "* For a public link too: python app.py --share --auth user:password (a login is required to share)"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    limit_arenas()  # before TensorFlow starts its threads: see workbench.jobs.malloc_tuning
    try:
        accounts = check_args(args)  # before the heavy imports below: a bad flag is answered in a second, not 20
        from workbench.ui.app import CSS, HEAD  # noqa: PLC0415 - Gradio and TensorFlow: after the flags are checked

        ctx, demo = create(args, accounts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"CIFAR Workbench: {ctx.device_summary}; store {ctx.store.path}", flush=True)
    if ctx.cluster_summary:
        print(f"jobs run on the {ctx.cluster_summary()}", flush=True)
    if ctx.interrupted:
        print(f"runs left running by an earlier process, now interrupted: {ctx.interrupted}", flush=True)
    if ctx.studies:
        print(f"studies continued (their interrupted trials resume): {', '.join(ctx.studies)}", flush=True)
    # Serve nothing from disk but Gradio's own files: not the store, its checkpoints, or the home folder.
    blocked = [str(ctx.store.path.parent.resolve()), str(Path.home())]
    try:
        # quiet: Gradio's start-up lines tell the user to "set `share=True` in `launch()`", which is not how
        # this app shares; it keeps the thread free so our own lines follow, then blocks until Ctrl-C.
        demo.queue(default_concurrency_limit=4).launch(
            quiet=True,
            prevent_thread_lock=True,
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            auth=login_check(ctx) if accounts else None,
            auth_message="CIFAR Workbench: log in" if accounts else None,
            allowed_paths=[],
            blocked_paths=blocked,
            inbrowser=not args.no_browser,
            show_error=True,
            css=CSS,
            head=HEAD,  # the label review's keyboard shortcuts
            max_file_size=MAX_FILE_BYTES,
        )  # a larger upload is refused before Gradio stores it
        print(startup_text(demo.local_url, demo.share_url), flush=True)
        demo.block_thread()
    finally:
        for driver in ctx.studies.values():  # first: a study must not tell Optuna of trials the shutdown cancels
            driver.halt()
        ctx.queue.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
