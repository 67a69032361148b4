"""`cpqa list`: the registered stages and backends, and the packaged recipes."""

from __future__ import annotations

import typer
from rich.table import Table

from .ui import out, run_or_exit

app = typer.Typer(no_args_is_help=True, help="List registered stages, backends and packaged recipes.")


@app.command("stages")
def list_stages():
    """Registered stages."""
    from ..registry import STAGES

    table = Table("stage", "takes", "gives", "description")
    for name in STAGES.names():
        cls = STAGES.get(name)
        table.add_row(name, cls.input_type.__name__, cls.output_type.__name__, STAGES.entries[name].summary())
    out.print(table)


@app.command("backends")
def list_backends():
    """Registered backends per capability, with the extra each needs."""
    from ..registry import BACKENDS

    table = Table("capability", "backend", "extra", "description")
    for capability in sorted(BACKENDS):
        for name, entry in sorted(BACKENDS[capability].entries.items()):
            table.add_row(capability, name, entry.extra or "-", entry.summary())
    out.print(table)


@app.command("recipes")
def list_recipes():
    """Packaged recipes."""
    from ..recipe import load_recipe, packaged_recipes

    table = Table("recipe", "stages", "documentation")
    for name in sorted(packaged_recipes()):
        r = run_or_exit(load_recipe, name)
        table.add_row(name, " → ".join(r.stage_names()), r.documentation)
    out.print(table)
