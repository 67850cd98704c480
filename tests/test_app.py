"""The app as a server: its flags, its API through gradio_client, its login, and what it will serve."""

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import ROOT, wait_until

from store import Store
from workbench.errors import UserError
from workbench.specs.run import RunSpec
from workbench.ui.forms import spec_to_form_values

TINY = RunSpec(
    model="resnet20",
    model_kwargs={"depth": 8, "base_width": 4},
    dataset="synthetic",
    dataset_options={"n_train": 300, "n_test": 60},
    batch_size=50,
    epochs=2,
    learning_rate=0.05,
    schedule="cosine",
    name="api-run",
)


def _check(*argv):
    sys.path.insert(0, str(ROOT))
    import app

    return app.check_args(app.parse_args(list(argv)))


def test_flags_are_checked_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_AUTH", raising=False)
    with pytest.raises(UserError, match=r"--share opens a public link .* give a login with --auth"):
        _check("--share")
    with pytest.raises(UserError, match="--auth must be user:password"):
        _check("--auth", "alice")
    with pytest.raises(UserError, match="--port must be between"):
        _check("--port", "70000")
    with pytest.raises(UserError, match=r"--data .* does not exist"):
        _check("--data", str(tmp_path / "nothing.tar.gz"))
    accounts = _check("--share", "--auth", "alice:pw")
    assert accounts.names() == ["alice"] and accounts.check("alice", "pw") and not accounts.check("alice", "pwx")
    assert accounts.user("alice").is_admin  # the one who started the app
    monkeypatch.setenv("WORKBENCH_AUTH", "bob:secret")
    accounts = _check("--share")
    assert accounts.names() == ["bob"] and accounts.check("bob", "secret")


def test_share_without_login_exits_with_a_message(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--share", "--db", str(tmp_path / "w.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2 and "error: --share opens a public link" in result.stderr
    assert not (tmp_path / "w.db").exists()


def test_api_queues_a_run_and_lists_it(app_server):
    from gradio_client import Client

    with Store(app_server.db) as store:  # the server is shared: other tests' runs may be there
        before = len(store.list_runs())
    client = Client(app_server.url, verbose=False)
    message, _ = client.predict("api,smoke", *spec_to_form_values(TINY), api_name="/train")
    queued = re.match(r"Queued run (\d+): \*\*api-run\*\*", message)
    assert queued, message
    run_id = int(queued.group(1))
    with Store(app_server.db) as store:  # a second process reading the server's store
        deadline = time.monotonic() + 180
        while store.get_run(run_id)["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.5)
        run = store.get_run(run_id)
        assert run["status"] == "completed", run["error"]
        assert run["tags"] == ["api", "smoke"]
    leaderboard = client.predict(api_name="/runs_refresh")[0]
    rows = leaderboard.get("value", leaderboard)["data"]
    assert any(row[1] == run_id and "api-run" in row[2] and "completed" in row for row in rows), rows
    bad = spec_to_form_values(TINY.replace(learning_rate=-1))
    message, _ = client.predict("", *bad, api_name="/train")
    assert message.startswith("**Not queued:** learning rate must be > 0")
    with Store(app_server.db) as store:
        assert len(store.list_runs()) == before + 1


def test_a_mistyped_model_is_refused_not_replaced(app_server):
    """Issue 23: "lenett" in the Model field became lenet and Train queued a LeNet run."""
    from gradio_client import Client

    with Store(app_server.db) as store:
        before = len(store.list_runs())
    client = Client(app_server.url, verbose=False)
    message, _ = client.predict("", *spec_to_form_values(TINY.replace(model="lenett")), api_name="/train")
    assert message.startswith("**Not queued:** Model “lenett” is not in the model zoo (closest: lenet)"), message
    assert "python -m workbench models" in message
    with Store(app_server.db) as store:
        assert len(store.list_runs()) == before


def test_startup_lines_name_this_apps_share_flag(app_server):
    """Issue 23: Gradio's start-up line said to "set `share=True` in `launch()`"; the app says --share."""
    log = wait_until(lambda: "--share" in app_server.log.read_text() and app_server.log.read_text(), "the hint")
    assert f"Running on local URL:  http://127.0.0.1:{app_server.port}/" in log
    assert "python app.py --share --auth user:password" in log
    assert "share=True" not in log


def test_api_fine_tunes_and_cancels_in_its_process(app_server):
    """The Fine-tune tab's endpoints, as its page calls them (the page itself: tests/test_browser.py's slow
    test_fine_tune_a_backbone_from_its_tab): a refusal in the form's words, then mobilenet_v2 (random weights)
    queued, started in its own process and cancelled there from the tab's live panel."""
    from gradio_client import Client

    from workbench.specs import FinetuneSpec
    from workbench.ui.tabs.finetune import form_fields

    client = Client(app_server.url, verbose=False)
    too_small = FinetuneSpec(backbone="inception_v3", image_size=32)
    message, _ = client.predict("", *form_fields(too_small).values(), api_name="/finetune")
    assert message.startswith("**Not queued:** image size 32 is below inception_v3's minimum of 75"), message
    spec = FinetuneSpec(
        backbone="mobilenet_v2",
        weights="none",
        image_size=32,
        head_epochs=1,
        finetune_epochs=30,
        batch_size=50,
        dataset="synthetic",
        dataset_options={"n_train": 300, "n_test": 60},
        name="ft-api",
    )
    message, _ = client.predict("", *form_fields(spec).values(), api_name="/finetune")
    run_id = int(re.match(r"Queued run (\d+): \*\*ft-api\*\*", message).group(1))
    with Store(app_server.db) as store:  # a second process reading the server's store
        deadline = time.monotonic() + 180
        while store.get_run(run_id)["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.get_run(run_id)["status"] == "running", store.get_run(run_id)
        said = client.predict(run_id, api_name="/finetune_cancel")
        assert said.startswith(f"Cancelling run {run_id}: "), said  # it had started: not "waiting"
        while store.get_run(run_id)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        run = store.get_run(run_id)
    assert run["kind"] == "finetune" and run["status"] == "cancelled" and run["error"] is None, run
    assert run["spec"]["backbone"] == "mobilenet_v2" and run["spec"]["weights"] == "none"


def _status(url, data=None):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_store_files_are_not_served(app_server):
    for path in (str(app_server.db), "runs/workbench.db", "../runs/workbench.db", str(ROOT / "app.py"), "/etc/passwd"):
        assert _status(f"{app_server.url}gradio_api/file={path}") in (403, 404), path


def test_form_paths_cannot_leave_the_allowed_folders(app_server):
    from conftest import FIXTURES
    from gradio_client import Client

    client = Client(app_server.url, verbose=False)
    outside = [
        str(FIXTURES / "cifar10-mini.tar.gz"),
        str(app_server.db.parent / ".." / ".." / "etc"),
        "../../../etc/passwd",
    ]
    for path in outside:
        values = spec_to_form_values(TINY.replace(dataset="cifar10", dataset_options={}, data_path=path))
        message, _ = client.predict("", *values, api_name="/train")
        assert "is outside the folders this app may read" in message and "--data-root" in message, message
    with Store(app_server.db) as store:
        assert all(run["spec"]["data_path"] == "" for run in store.list_runs())


def test_data_roots_allow_the_data_folder_and_extra_roots(tmp_path):
    from workbench.ui.context import AppContext, default_data_roots

    data = tmp_path / "data" / "cifar.tar.gz"
    data.parent.mkdir()
    data.write_bytes(b"x")
    extra = tmp_path / "more"
    extra.mkdir()
    ctx = AppContext(
        store=None, queue=None, data_roots=default_data_roots(str(data), tmp_path / "runs" / "w.db", [extra])
    )
    assert ctx.check_path(str(data)) == str(data.resolve())
    assert ctx.check_path(str(extra / "set")) == str((extra / "set").resolve())
    with pytest.raises(UserError, match="outside the folders"):
        ctx.check_path(str(tmp_path / "data" / ".." / "secret"))
    link = tmp_path / "data" / "escape"
    link.symlink_to("/etc")
    with pytest.raises(UserError, match="outside the folders"):
        ctx.check_path(str(link / "passwd"))
