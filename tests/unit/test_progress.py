"""Progress bars: drawn by tqdm on a terminal, nothing at all elsewhere."""

from __future__ import annotations

import io

from projections.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_shows_count_rate_and_completion() -> None:
    screen = Terminal()
    bar = ProgressBar("replay", screen)
    for done in (0, 500, 1000):
        bar(done, 1000)
    drawn = screen.getvalue()
    assert drawn.startswith("\rreplay:") and "100%" in drawn and "1.00k/1.00k" in drawn
    assert " events/s" in drawn
    assert drawn.endswith("\n"), "a finished bar leaves its line"


def test_a_total_that_grows_is_followed() -> None:
    screen = Terminal()
    bar = ProgressBar("export", screen)
    bar(10, 100)
    bar(150, 200)
    bar(200, 200)
    assert "200/200" in screen.getvalue().rsplit("\r", 1)[-1]


def test_off_a_terminal_it_says_nothing() -> None:
    log = io.StringIO()
    bar = ProgressBar("replay", log)
    bar(5, 10)
    bar(10, 10)
    assert log.getvalue() == ""
