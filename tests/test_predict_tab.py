"""The app behind a login, as a share link would be: every route refuses a request without it; and the
Predict tab in headless Chromium: a tiny trained run, an uploaded picture of another size (top-5 and a
Grad-CAM map) beside a file that is not an image (refused by name, the other still predicted); and the
Runs tab's model download as a zip. (One server for both: an app start costs about 20 s here.)"""

import json
import zipfile

import numpy as np
import pytest
from conftest import ARTIFACTS, AppServer, wait_until
from PIL import Image
from test_app import TINY as TINY_SPEC
from test_app import _status
from test_predict import TINY

from store import Store
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec
from workbench.ui.forms import spec_to_form_values
from workbench.ui.tabs.runs_export import model_zip

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict-app")
    with Store(folder / "runs" / "workbench.db") as store:
        queue = JobQueue(store, devices=[], isolate=False)
        run_id = queue.submit(RunSpec.from_dict({**TINY, "epochs": 1, "name": "tiny"}))
        assert queue.wait(run_id, timeout=300) and store.get_run(run_id)["status"] == "completed"
        queue.shutdown()
        path = model_zip(store, run_id, "keras")
        with zipfile.ZipFile(path) as bundle:
            assert sorted(bundle.namelist()) == ["run-1.json", "run-1.keras"]
    server = AppServer(folder, "--auth", "alice:wonderland")
    yield server, folder
    server.stop()


def test_login_is_required_on_every_route(served):
    server, _ = served
    payload = json.dumps({"data": ["", *spec_to_form_values(TINY_SPEC)]}).encode()
    assert _status(f"{server.url}gradio_api/call/train", payload) == 401
    assert _status(f"{server.url}gradio_api/info") == 401
    assert _status(f"{server.url}config") == 401
    from gradio_client import Client

    client = Client(server.url, auth=("alice", "wonderland"), verbose=False)
    assert "/train" in json.dumps(client.view_api(return_format="dict", print_info=False))
    with pytest.raises(ValueError, match="Could not login"):  # gradio_client's error for refused credentials
        Client(server.url, auth=("alice", "wrong"), verbose=False)
    assert "wonderland" not in server.log.read_text()
    with Store(server.db) as store:
        assert "wonderland" not in json.dumps(store.list_runs())


def test_predict_an_upload_through_a_login(served, browser):
    server, folder = served
    picture = folder / "bird.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 140, 3), dtype=np.uint8)).save(picture)
    not_image = folder / "notes.png"
    not_image.write_text("not a picture")
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(server.url)
    page.locator("input[type=text]").first.fill("alice")
    page.locator("input[type=password]").fill("wonderland")
    page.keyboard.press("Enter")
    page.get_by_role("tab", name="Predict").click()
    page.locator("#predict-source input").click()
    page.get_by_role("option", name="run 1 · tiny", exact=False).click()
    assert not page.locator("#predict-empty").is_visible()  # a run to predict with: no "nothing yet" note
    page.locator("#predict-uploads input[type=file]").set_input_files([str(picture), str(not_image)])
    wait_until(lambda: "notes\n.png" in page.locator("#predict-uploads").inner_text(), "the uploads", page=page)
    page.locator("#predict-uploads-button").click()
    message = page.locator("#predict-message")
    wait_until(lambda: "1 picture(s) predicted" in message.inner_text(), "the prediction", page=page)
    assert "notes.png is not an image" in message.inner_text()
    assert page.locator("#predict-gallery img").count() == 1
    assert "bird.png · run 1: tiny: pattern_" in page.locator("#predict-gallery").inner_text()
    assert "run 1: tiny" in page.locator("#predict-table").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "predict-tab.png"), full_page=True)
