"""The README.md an export carries: what it holds, what the model hears of each clip, and how its
trainer finds the audio when the paths are relative."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io_atomic import write_atomic
from .formats import Format

README = "README.md"


def write_readme(out: Path, writer: Format, summary: dict[str, Any]) -> Path:
    heard = summary["heard"]
    paths = summary["options"]["audio_paths"]
    lines = [f"# cpqa export: {writer.name}", "", f"{writer.description}. Written by cpqa "
             f"{summary['cpqa_version']} from `{summary['source']}`; `export.json` has the options and counts.", "",
             "| split | items | clips | recordings | speakers |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {s['items']} | {s['clips']} | {s['recordings']} | {s['speakers']} |"
              for name, s in summary["splits"].items()]
    lines += ["", "## What the model hears", ""]
    if heard["window_s"] is None:
        lines.append("Whole clips: this format names no model window (`cpqa evaluate` applies its model's).")
    else:
        dropped = ", ".join(f"{reason}: {n}" for reason, n in heard["dropped"].items()) or "none"
        lines.append(f"At most {heard['window_s']:g} s of audio per example (policy `{heard['long_audio']}`): "
                     f"{heard['items_whole']} item(s) hear their whole clip; {heard['items_in_windows']} item(s) of "
                     f"{heard['clips_split']} longer clip(s) hear the window their evidence lies in "
                     f"({heard['windows_written']} window file(s) in `audio/`); left out as about audio the model "
                     f"would not hear: {dropped}.")
    lines += ["", "## Audio paths", ""]
    if writer.embeds_audio:
        lines.append(writer.relative_paths)
    elif paths == "absolute":
        lines.append("Absolute paths: this folder works where the files they name stay in place "
                     "(heard windows are in `audio/` here).")
    else:
        where = "copies of the clips in `audio/`, so the folder stands alone" if paths == "copy" else \
            "the clips stay where they were"
        lines.append(f"Paths relative to this folder ({where}). {writer.relative_paths}")
    return write_atomic(out / README, "\n".join(lines) + "\n")
