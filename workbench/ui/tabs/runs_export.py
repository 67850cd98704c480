"""The Runs tab's model download: the picked run's model with its preprocessing, in a chosen format,
as one zip with its JSON (class names, preprocessing, spec), written into a new temporary folder that
Gradio then serves (`workbench.predict.export`)."""

import logging
import tempfile
from dataclasses import dataclass

import gradio as gr

from workbench.constants import AuditAction
from workbench.errors import UserError
from workbench.predict.export import FORMATS, export_zip
from workbench.views import runs as rd

log = logging.getLogger(__name__)
FORMAT_CHOICES = [
    ("Keras (.keras)", "keras"),
    ("TensorFlow SavedModel", "savedmodel"),
    ("TFLite", "tflite"),
    ("ONNX", "onnx"),
]
assert [value for _, value in FORMAT_CHOICES] == list(FORMATS)


@dataclass(eq=False)
class ModelExport:
    format: gr.Dropdown
    button: gr.Button
    file: gr.File
    message: gr.Markdown


def layout() -> ModelExport:
    """The row's components, inside the caller's layout (the Runs tab's "Manage a run")."""
    with gr.Row(equal_height=False):
        fmt = gr.Dropdown(
            FORMAT_CHOICES,
            value="keras",
            label="Model format",
            scale=1,
            min_width=160,
            info="takes 0..255 RGB images, returns logits",
        )
        button = gr.Button("Download the model", scale=1, elem_id="runs-model-export")
        file = gr.File(label="Model and its JSON (zip)", visible=False, interactive=False, scale=2)
    message = gr.Markdown()
    return ModelExport(fmt, button, file, message)


def model_zip(store, choice, fmt) -> str:
    """The picked run's model as a zip in a new temporary folder; a UserError says why not."""
    if not choice:
        raise UserError("pick a completed run above first")
    return str(export_zip(store, rd.chosen_run_id(choice), fmt, tempfile.mkdtemp(prefix="workbench-model-")))


def wire(ctx, export: ModelExport, pick) -> None:
    def download(choice, fmt):
        try:
            path = model_zip(ctx.store, choice, fmt)
            ctx.store.record(ctx.user().name, AuditAction.EXPORT, f"run {rd.chosen_run_id(choice)}", f"{fmt} model")
        except Exception as exc:
            if not isinstance(exc, UserError):
                log.exception("model export failed")
            return gr.update(value=None, visible=False), f"⚠️ {exc}"
        return gr.update(value=path, visible=True), ""

    export.button.click(download, [pick, export.format], [export.file, export.message], api_name="runs_model_export")
