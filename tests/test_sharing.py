"""A shared page (issue 28): an app with an --auth-file of two members and an admin, used by two people at once
through the API and in two browser contexts: each run records who made it, a member's Cancel, Archive or Delete
of another's run is refused with a clear message and changes nothing, the Audit tab lists both users' actions,
and a wrong password is audited without the password. And a plain password in the file refuses the start."""

import re
import subprocess
import sys
import time

import pytest
from conftest import ARTIFACTS, ROOT, AppServer, wait_until
from test_app import _status

from store import Store
from workbench.constants import ACTIVE_STATUSES, AuditAction, RunStatus
from workbench.specs.run import RunSpec
from workbench.ui.forms import spec_to_form_values
from workbench.users import hash_password

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "root": "root-password-333"}
LONG = RunSpec(model="lenet", dataset="synthetic", dataset_options={"n_train": 600, "n_test": 100}, epochs=400)
LONG = LONG.replace(batch_size=50, name="alice-long")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shared")
    users = folder / "users.txt"
    users.write_text(
        f"alice:{hash_password(PASSWORDS['alice'])}\n"
        f"bob:{hash_password(PASSWORDS['bob'])}:member\n"
        f"root:{hash_password(PASSWORDS['root'])}:admin\n"
    )
    server = AppServer(folder, "--auth-file", str(users))
    yield server
    server.stop()


def _client(server, user):
    from gradio_client import Client

    return Client(server.url, auth=(user, PASSWORDS[user]), verbose=False)


def _queue(client, spec) -> int:
    message, _ = client.predict("", *spec_to_form_values(spec), api_name="/train")
    queued = re.match(r"Queued run (\d+):", message)
    assert queued, message
    return int(queued.group(1))


def _run(server, run_id) -> dict:
    with Store(server.db) as store:
        return store.get_run(run_id)


def _audit(server) -> list:
    with Store(server.db) as store:
        return [(r["user"], r["action"], r["target"]) for r in reversed(store.audit_rows(limit=None))]


def test_a_plain_password_in_the_auth_file_refuses_the_start(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hash_password('a-password-ok')}:admin\nbob:letmein-plain\n")
    started = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--auth-file", str(users), "--db", str(tmp_path / "w.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert started.returncode == 2, started.stderr
    assert "line 2 (user bob): the second field is not a password hash" in started.stderr
    assert "python -m workbench hash-password bob" in started.stderr and "letmein" not in started.stderr
    assert not (tmp_path / "w.db").exists()


def test_members_are_refused_on_what_others_made_and_every_action_is_audited(shared):
    alice, bob, root = _client(shared, "alice"), _client(shared, "bob"), _client(shared, "root")
    long_run = _queue(alice, LONG)
    waiting = _queue(alice, LONG.replace(name="alice-waiting"))  # one CPU job at a time: it waits in line
    assert _run(shared, long_run)["created_by"] == "alice" and _run(shared, waiting)["created_by"] == "alice"
    wait_until(lambda: _run(shared, long_run)["status"] == RunStatus.RUNNING, "alice's run to start", timeout=120)

    for client in (bob, alice, root):  # each session's run choices, as its page gets them from its polls
        client.predict(None, "", api_name="/jobs")
        client.predict(api_name="/runs_refresh")
    refused = bob.predict(long_run, api_name="/cancel")
    assert refused == (
        f"**run {long_run} was made by alice: as a member, bob may cancel only what they made; ask alice or an "
        "admin to cancel it. Nothing was changed**"
    )
    message = bob.predict(waiting, True, api_name="/runs_delete")[0]
    assert f"run {waiting} was made by alice" in message and "may delete only what they made" in message
    assert "may archive only" in bob.predict(waiting, api_name="/runs_archive")
    time.sleep(1)
    assert _run(shared, long_run)["status"] == RunStatus.RUNNING and _run(shared, waiting)["status"] == RunStatus.QUEUED
    assert not _run(shared, waiting)["archived"]

    alice.predict(waiting, api_name="/cancel")  # her own, waiting in line: cancelled at once
    assert _run(shared, waiting)["status"] == RunStatus.CANCELLED
    assert "was made by" not in root.predict(long_run, api_name="/cancel")  # an admin may cancel anything
    wait_until(lambda: _run(shared, long_run)["status"] == RunStatus.CANCELLED, "the cancel", timeout=120)

    from gradio_client import Client

    with pytest.raises(ValueError, match="Could not login"):
        Client(shared.url, auth=("alice", "not-her-password-xyz"), verbose=False)
    trail = _audit(shared)
    assert [t for t in trail if t[0] in ("alice", "bob", "root")][:7] == [
        ("alice", AuditAction.QUEUE, f"run {long_run}"),
        ("alice", AuditAction.QUEUE, f"run {waiting}"),
        ("bob", AuditAction.REFUSED, f"run {long_run}"),
        ("bob", AuditAction.REFUSED, f"run {waiting}"),
        ("bob", AuditAction.REFUSED, f"run {waiting}"),
        ("alice", AuditAction.CANCEL, f"run {waiting}"),
        ("root", AuditAction.CANCEL, f"run {long_run}"),
    ]
    assert ("alice", AuditAction.LOGIN_FAILED, "page") in trail
    with Store(shared.db) as store:
        assert "not-her-password" not in repr(store.audit_rows(limit=None))
    assert "not-her-password" not in shared.log.read_text()
    assert _status(f"{shared.url}gradio_api/info") == 401  # the page and the API still need a login


def _login(browser, server, user):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.goto(server.url)
    page.locator("input[type=text]").first.fill(user)
    page.locator("input[type=password]").fill(PASSWORDS[user])
    page.keyboard.press("Enter")
    wait_until(lambda: f"Signed in as {user}" in page.locator("#who").inner_text(), f"{user}'s page", page=page)
    return context, page


def _pick(page, run_id, name):
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-pick input").click()
    page.get_by_role("option", name=f"{run_id}: {name}", exact=False).first.click()


def test_two_users_in_two_browsers(shared, browser):
    alice_api = _client(shared, "alice")
    run_id = _queue(alice_api, LONG.replace(name="alice-short", epochs=1))
    wait_until(
        lambda: _run(shared, run_id)["status"] not in ACTIVE_STATUSES,
        "alice's short run",
        timeout=300,
    )
    alice_context, alice = _login(browser, shared, "alice")
    bob_context, bob = _login(browser, shared, "bob")
    try:
        assert "member" in bob.locator("#who").inner_text()
        _pick(bob, run_id, "alice-short")
        bob.get_by_label("I am sure").check()
        bob.get_by_role("button", name="Delete run and files").click()
        status = bob.locator("#runs-action-status")
        wait_until(lambda: "was made by alice" in status.inner_text(), "bob's refusal", page=bob)
        assert "Nothing was changed" in status.inner_text()
        assert _run(shared, run_id)["name"] == "alice-short"  # still there

        _pick(alice, run_id, "alice-short")
        alice.get_by_role("button", name="Archive").click()
        wait_until(
            lambda: f"Archived run {run_id}" in alice.locator("#runs-action-status").inner_text(),
            "the archive",
            page=alice,
        )
        assert _run(shared, run_id)["archived"]

        bob.get_by_role("tab", name="Audit").click()
        table = bob.locator("#audit-table")
        wait_until(lambda: "archive" in table.inner_text(), "the audit table", page=bob)
        text = table.inner_text()
        assert re.search(rf"alice\s+archive\s+run {run_id}", text), text
        assert re.search(rf"bob\s+refused\s+run {run_id}", text), text
        ARTIFACTS.mkdir(exist_ok=True)
        bob.screenshot(path=str(ARTIFACTS / "audit-tab.png"), full_page=True)
    finally:
        alice_context.close()
        bob_context.close()
