"""Progress of long CLI work (`replay`, `audit --all`) as a tqdm bar on a terminal, else nothing.

tqdm draws, rates and estimates; this adapter only fits it to the `(done, total)`
callbacks the replay and the export make. Off a terminal (CI, a pipe, a log file) it
stays quiet: the commands print their summary when they finish.
"""

from __future__ import annotations

import sys
from typing import Never, TextIO

from tqdm import tqdm


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._bar: tqdm[Never] | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self._bar
        if bar is None:
            bar = self._bar = tqdm(
                desc=self.label,
                total=total,
                unit=" events",
                unit_scale=True,
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.2,
            )
        elif bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
