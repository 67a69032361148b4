"""What every command shares: the two consoles, one way to show a CPQAError, logging, progress
bars and number formatting. Command modules import this module, never the package."""

from __future__ import annotations

import logging
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import CPQAError
from ..stage import ProgressHook

console = Console(stderr=True)
"""Messages, warnings and progress (stderr)."""
out = Console()
"""Results (stdout)."""


def run_or_exit(fn, *args, **kwargs):
    """Call a library function; a CPQAError becomes one clear line and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except CPQAError as exc:
        # escaped: rich would take "[gpu]" in "pip install 'cpqa[gpu]'" for markup and drop it
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger("cpqa")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler = RichHandler(console=console, show_path=False, level=logging.INFO if verbose else logging.WARNING)
    root.addHandler(handler)


def fmt(x: float | None, digits: int = 1) -> str:
    """A number for a table cell; '-' when there is none."""
    return "-" if x is None else f"{x:.{digits}f}"


class RichProgress(ProgressHook):
    """Renders the library's progress hook as rich progress bars."""

    def __init__(self):
        self.progress = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=False)
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def stage_started(self, name: str, total: int | None, done: int) -> None:
        self.tasks[name] = self.progress.add_task(name, total=total, completed=done)

    def advance(self, name: str, n: int) -> None:
        self.progress.advance(self.tasks[name], n)

    def stage_finished(self, name: str, stats: dict[str, Any], already_done: bool) -> None:
        if already_done:
            self.progress.add_task(f"{name} ✓", total=1, completed=1)
        elif name in self.tasks:
            task = self.tasks[name]
            self.progress.update(task, total=self.progress.tasks[task].completed or 1,
                                 completed=self.progress.tasks[task].completed or 1)
