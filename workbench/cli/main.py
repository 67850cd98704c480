"""`python -m workbench` or `workbench`: train, finetune, distill, sweep, sweeps, search, studies, train-all, resume,
runs, export, ensemble, models — headless.

Every failure a user can cause ends in one line on stderr and exit status 2, never a traceback. This module is the
parser and the exit status; each group of commands lives in a module of its own that adds its subparsers
(`train`, `sweep`, `search`, `labels`, `features`, `results`, `accounts`).
"""

import argparse
import functools
import os
import sys
from typing import NoReturn

from workbench.cli.accounts import add_commands as add_account_commands
from workbench.cli.common import open_store, prog
from workbench.cli.features import add_commands as add_feature_commands
from workbench.cli.follow import follow
from workbench.cli.job_queue import check_queue_flags
from workbench.cli.labels import add_commands as add_label_commands
from workbench.cli.results import add_commands as add_result_commands
from workbench.cli.search import add_commands as add_search_commands
from workbench.cli.sweep import add_commands as add_sweep_commands
from workbench.cli.train import add_preset_commands, add_run_commands
from workbench.errors import UserError
from workbench.jobs.malloc_tuning import limit_arenas

COMMANDS = (
    "train, finetune, distill, sweep, sweeps, search, studies, crossval, train-all, resume, runs, export, ensemble, "
    "models, label-issues, duplicates, map, hash-password, audit"
)


def console() -> NoReturn:
    """The `workbench` command (pyproject's [project.scripts]) and `python -m workbench`.

    The exit status is main()'s (the runs' statuses), and the process ends right after it: its work is done
    (the store committed, the queue and Ray shut down, files closed), and what Python's finalization would still
    run is TensorFlow's and Ray's native teardown, whose threads must not turn a finished command's status into
    a crash's (issue 28: "run 1 completed", then a non-zero exit on a loaded machine)."""
    limit_arenas()  # before TensorFlow starts its threads: see workbench.jobs.malloc_tuning
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.db = getattr(args, "db", None)  # neither before nor after the subcommand: the default store
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        check_queue_flags(args)  # a command that runs jobs: its Ray flags' mistakes before the store is opened
        return args.handler(args) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # Ctrl-C stopped the command: not a run status
        return 130


def build_parser() -> argparse.ArgumentParser:
    # The global flags are accepted before or after the subcommand (`runs --db X` as well as `--db X runs`):
    # every subcommand gets them with SUPPRESS as default, so one given before is not overwritten.
    global_flags = argparse.ArgumentParser(add_help=False)
    global_flags.add_argument(
        "--db", default=argparse.SUPPRESS, help="the store's SQLite file (default: $WORKBENCH_DB or runs/workbench.db)"
    )
    parser = argparse.ArgumentParser(prog=prog(), description="CIFAR Workbench, headless.", parents=[global_flags])
    sub = parser.add_subparsers(dest="command", metavar="{" + COMMANDS.replace(" ", "") + "}")
    # every subcommand takes the global flags (type: ignore: mypy refuses assigning to a method)
    sub.add_parser = functools.partial(sub.add_parser, parents=[global_flags])  # type: ignore[method-assign]

    add_run_commands(sub)  # train, finetune, distill
    add_sweep_commands(sub, follow=follow, open_store=open_store)
    add_search_commands(sub, open_store=open_store)
    add_label_commands(sub, follow=follow, open_store=open_store)
    add_feature_commands(sub, open_store=open_store)
    add_preset_commands(sub)  # train-all, resume
    add_result_commands(sub)  # runs, export, ensemble, models
    add_account_commands(sub, open_store=open_store)
    return parser


if __name__ == "__main__":
    sys.exit(console())
