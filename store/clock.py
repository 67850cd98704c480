"""The store's clock: every time it writes is ISO-8601 UTC text."""

import datetime as _dt


def utc_now() -> str:
    """Current time as ISO-8601 UTC text, e.g. `2025-01-31T12:00:00.123+00:00`."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")
