"""`Refresh`: a view's refresh handler together with the components it reads and writes. A tab hands
its refreshes to the page, which runs them on the page's own events (page load, the tab opened)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr


@dataclass(eq=False)
class Refresh:
    fn: Callable
    inputs: list
    outputs: list

    def wire(self, listener, **options):
        """Run the refresh on `listener`: an event such as `demo.load`, `tab.select`, `button.click`
        or a step's `.then`; `options` are the listener's (show_progress, api_name, ...)."""
        return listener(self.fn, self.inputs, self.outputs, **options)

    def on(self, triggers: list, **options):
        """Run the refresh on any of several events (`gr.on`)."""
        return gr.on(triggers, self.fn, self.inputs, self.outputs, **options)
