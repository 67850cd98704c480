"""The Gradio workbench: `app.build_app(ctx)` assembles the page from `tabs/` (one module per tab, each a
`create_*_tab(ctx)` returning a small typed object: FormTab, RunsTab, EnsembleTab, ErrorsTab); pure data
for the views in `views/`, every figure in `plots`."""
