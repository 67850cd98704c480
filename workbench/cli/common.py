"""What every command of the CLI uses: the command's name as the user typed it (for usage lines and hints) and the
--db store."""

import sys
from pathlib import Path


def prog() -> str:
    """The command as the user typed it, for usage lines and hints."""
    return "workbench" if Path(sys.argv[0]).name == "workbench" else "python -m workbench"


def open_store(args, create=True):
    """The --db store (default: $WORKBENCH_DB or runs/workbench.db). With `create=False`, None when its file
    does not exist yet: a dry run estimates without history rather than create a store (or its folder)."""
    from store import Store, default_db_path  # noqa: PLC0415 - pandas: sqlite_utils imports it (seconds); --help needs no store

    path = Path(args.db) if args.db else default_db_path()
    if not create and not path.is_file():
        return None
    return Store(path)
