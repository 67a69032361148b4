"""`cpqa review`: serve the review app (the default command), export the reviewed sets, print agreement."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table
from typer.core import TyperGroup

from .ui import console, fmt, out, run_or_exit


class _ServeByDefault(TyperGroup):
    """`cpqa review RUN ...` means `cpqa review serve RUN ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] != "--help":
            args = ["serve", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_ServeByDefault, no_args_is_help=True, add_completion=False,
                  help="Review a run's QA in the browser: judge and correct it, write human QA, measure agreement.")


@app.command()
def serve(run: Path = typer.Argument(..., help="A run directory with a clips stage."),
          host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback needs a token."),
          port: int = typer.Option(8000, help="Port to listen on."),
          token: str | None = typer.Option(None, help="Access token; generated when binding beyond loopback.")):
    """Serve the review app of RUN (the default: `cpqa review RUN`)."""
    from ..review.server import is_loopback, new_token
    from ..review.server import serve as serve_app

    if token is None and not is_loopback(host):
        token = new_token()
        console.print(f"Generated an access token: {token}", highlight=False)
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    out.print(f"Reviewing {run} at {url}  (Ctrl-C to stop)", highlight=False)
    run_or_exit(serve_app, run, host, port, token)


@app.command()
def export(run: Path = typer.Argument(..., help="A run directory."),
           what: str = typer.Option(..., "--what", help="reviewed: the accepted and edited generated QA; "
                                                         "human: the QA written by reviewers."),
           output: Path = typer.Option(..., "-o", "--output", help="The JSONL(.gz) file to write.")):
    """Write a reviewed set as JSONL QAItems (the format `cpqa evaluate` reads)."""
    from ..review.export import export as export_set

    n = run_or_exit(export_set, run, what, output)
    out.print(f"Wrote {n} {what} QA item(s) to {output}", highlight=False)


@app.command()
def stats(run: Path = typer.Argument(..., help="A run directory."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")):
    """Review progress, each reviewer's decisions and Cohen's kappa between reviewers (per type)."""
    from ..review.consensus import review_stats
    from ..review.data import load_run
    from ..review.db import ReviewDB

    s = run_or_exit(lambda: review_stats(load_run(run), ReviewDB(run)))
    if as_json:
        out.print_json(json.dumps(s))
        return
    out.print(f"{s['clips']} clips; generated QA: {s['qa_decided']}/{s['qa']} decided, {s['qa_accepted']} accepted "
              f"({s['qa_edited']} edited), {s['qa_rejected']} rejected; human QA: {s['human']} on "
              f"{s['clips_with_human']} clip(s)", highlight=False)
    if not s["reviewers"]:
        out.print("No decisions yet.")
        return
    table = Table("reviewer", "accept", "edit", "reject", "human", title="Reviewers", title_justify="left")
    for r in s["reviewers"]:
        table.add_row(r["name"], str(r["accept"]), str(r["edit"]), str(r["reject"]), str(r["human"]))
    out.print(table)
    if not s["kappa"]:
        out.print("Cohen's kappa: no two reviewers have judged the same item yet.")
        return
    table = Table("reviewers", "type", "n", "agreement", "kappa",
                  title="Cohen's kappa on accept/reject (edit = accept)", title_justify="left")
    for k in s["kappa"]:
        table.add_row(f"{k['a']} / {k['b']}", "all", str(k["n"]), fmt(k["agreement"], 3), fmt(k["kappa"], 3))
        for t, kt in k["per_type"].items():
            table.add_row("", t, str(kt["n"]), fmt(kt["agreement"], 3), fmt(kt["kappa"], 3))
    out.print(table)
