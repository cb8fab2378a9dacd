"""Progress bars for work that can take seconds (uploads, conversions), drawn on a terminal only.

tqdm draws them: it is already installed (anaconda-client draws its own upload bar with it), and
its `delay` keeps a bar away from work that ends sooner.  Off a terminal (a CI log, a pipe)
nothing is drawn and tqdm is not even imported (85 ms, measured on a loaded machine): the plain
`uploading …` / `uploaded …` lines stay the record.  Imported only by actions, never by dodo.py.
"""

from __future__ import annotations

import sys
from typing import IO, Any

DELAY = 1.0  # seconds of work before a bar appears


class Silent:
    """What `bar` gives off a terminal: tqdm's interface, doing nothing."""

    disable = True
    n = 0

    def update(self, n: float = 1) -> None:
        pass

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def bar(total: int | None, description: str, *, unit: str = "B", stream: IO[str] | None = None,
        **_ignored: Any) -> Any:
    """A bar on stderr (doit shows a task's stderr as it runs), or a Silent one off a terminal.

    Extra keyword arguments are accepted and dropped, so this can stand in for anaconda-client's
    own `tqdm(total=…, unit=…, unit_scale=…, unit_divisor=…)`."""
    stream = stream or sys.stderr
    if not terminal(stream):
        return Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, unit_scale=unit == "B", unit_divisor=1024,
                delay=DELAY, leave=False, file=stream, dynamic_ncols=True)


def terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def reading(stream: IO[bytes], progress: Any) -> IO[bytes]:
    """stream, counting each read into progress (the stream itself when the bar is silent)."""
    if progress.disable:
        return stream
    from tqdm.utils import CallbackIOWrapper

    return CallbackIOWrapper(progress.update, stream, "read")
