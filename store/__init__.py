"""The workbench store: runs, per-epoch metrics, stored logits and ensembles in one SQLite file.

    from store import Store
    with Store("runs/workbench.db") as store:
        run_id = store.create_run("resnet-a", {"model": "resnet20", "epochs": 30})

See `store.store.Store` for the API and its threading model, `store.schema` for the tables.
"""

from .store import Store, default_db_path, utc_now

__all__ = ["Store", "default_db_path", "utc_now"]
