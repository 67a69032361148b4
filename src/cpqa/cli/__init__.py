"""The `cpqa` command: thin typer wrappers over library calls, rendered with rich. Each module holds
the commands of one job and imports `ui` for what they share; this package only mounts them."""

import typer

from . import calibrate, evaluate, export, listing, probe, review, runs

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn in-the-wild speech into Contextual Paralinguistic QA data, and evaluate speech-LLMs on it.")
for command in (runs.build, runs.status, runs.inspect, runs.report):
    app.command()(command)
app.command("calibrate")(calibrate.calibrate_command)
app.command("evaluate")(evaluate.evaluate_cmd)
app.command("compare")(evaluate.compare_cmd)
app.command("export")(export.export_cmd)
app.command("finetune")(export.finetune_cmd)
app.add_typer(listing.app, name="list")
app.add_typer(review.app, name="review")
app.add_typer(probe.app, name="probe")
