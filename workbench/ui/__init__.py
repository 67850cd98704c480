"""The Gradio workbench: one module per tab, each a `create_*_tab(ctx)` function; shared figures in plots."""
