"""The specs' messages and help said in a form's words: which field a refusal is about, and the form's labels
in place of the CLI's flags and snake_case names (the specs' own text stays as the CLI shows it)."""

import gradio as gr
import pytest

from workbench.errors import UserError
from workbench.specs.finetune import HELP, FinetuneSpec
from workbench.specs.run import RunSpec
from workbench.ui.forms import (
    FORM_FIELDS,
    LABELS,
    FormWords,
    build_form,
    form_values_to_spec,
    option_hint,
    plain_label,
    spec_to_form_values,
)
from workbench.ui.tabs import finetune as ft


def test_a_refusal_names_its_field_by_the_forms_label():
    train = FormWords(RunSpec, LABELS, FORM_FIELDS)
    cases = {  # message -> (field, as the form says it)
        "epochs must be at least 1": ("epochs", "epochs must be at least 1"),
        "warm-up epochs must be in [0, 30)": ("warmup_epochs", "warm-up epochs must be in [0, 30)"),
        "val_size and train_subset must be >= 0 (0 = default)": (
            "val_size",
            "“Validation images” and “Training subset” must be >= 0 (0 = default)",
        ),
        "Model options: 'x' is not key=value": ("model_kwargs", "Model options: 'x' is not key=value"),
        "data path /etc is outside the folders": ("data_path", "data path /etc is outside the folders"),
        "the run asks for 2 GPU(s) but this machine has 0": (None, "the run asks for 2 GPU(s) but this machine has 0"),
    }
    assert {m: (train.field(m), train.say(m)) for m in cases} == cases
    tune = FormWords(FinetuneSpec, ft.LABELS, ft.form_names())
    refusal = "image size 32 is below inception_v3's minimum of 75 pixels; use --size 75 or more"
    assert tune.field(refusal) == "image_size" and "use “Input size” 75 or more" in tune.say(refusal)
    assert (
        tune.say(HELP["finetune_epochs"])
        == "phase 2: epochs fine-tuning from “Unfreeze from layer” on (SGD + Nesterov 0.9)"
    )
    assert "--" in HELP["finetune_epochs"]  # the CLI's help is left as it is
    assert tune.say("--sizes and --size-x stay") == "--sizes and --size-x stay"  # whole flags only
    assert plain_label("Validation images (0 = default)") == "Validation images"


def test_an_unknown_model_is_refused_at_the_model_field():
    values = spec_to_form_values(RunSpec(model="lenett"))
    with pytest.raises(UserError) as refused:
        form_values_to_spec(*values)
    message = str(refused.value)
    assert message.startswith("Model “lenett” is not in the model zoo (closest: lenet);")
    assert "python -m workbench models" in message
    assert FormWords(RunSpec, LABELS, FORM_FIELDS).field(message) == "model"


def test_the_model_options_hint_rounds_its_floats_and_shows_the_variants_values():
    """airbench's scale is 1/9: the placeholder says 0.111, which fits the field, not 0.1111111111111111; and
    it shows what a blank field gives, the variant's own values (airbench_cpu's narrower widths)."""
    hint = option_hint("airbench_cpu")
    assert "scale=0.111" in hint and "0.1111" not in hint
    assert "widths=[32,128,128]" in hint
    assert "depth=110," in option_hint("resnet110")


def test_path_fields_are_one_line_that_is_never_broken_inside_a_name():
    """A wrapping box broke a path at a hyphen or inside a name (issue 23): path fields are one line."""
    with gr.Blocks():
        train = build_form(RunSpec(), 0)
        tune = ft.build_form(FinetuneSpec(), 0)
    for field in (train["data_path"], tune["data_path"], tune["weights"]):
        assert field.lines == 1 and field.max_lines == 1
