"""Speaker diarization: who speaks when in each recording, before segmentation.

The `diarize` stage (Recording → Recording) writes `Recording.speaker_turns` ({start, end,
speaker}) and `Recording.diarization` ({model, speaker_count}). Turns the input already gave (an RTTM or a manifest's speakers,
stored by ingest) are kept by default, with `model: given-turns`. A recording the backend cannot
diarize passes on without turns, its `diarization` naming the reason.

Backends (capability `diarizer`, `cpqa.audio.diarizer`), registered by dotted path in
`cpqa.catalog` so that a recipe loads only the one it names:

- `embedding-cluster` (offline, CPU; `cpqa.audio.embedding_cluster`): Silero VAD, Resemblyzer GE2E
  window embeddings, spectral or agglomerative clustering; its DER on AMI is documented there.
- `pyannote` (GPU + Hugging Face token; `cpqa.audio.pyannote_diarizer`): a pretrained
  pyannote.audio pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pydantic import Field

from ..record_parts import Diarization
from ..records import Recording, Skip
from ..stage import BackendSpec, Stage, StageConfig, backend_field
from .speakers import TURNS_MODEL, Turn

logger = logging.getLogger(__name__)



# --- the stage -----------------------------------------------------------------------------------

class DiarizeConfig(StageConfig):
    batch_size: int = Field(1, ge=1, description="Recordings per durable write: one can take minutes.")
    backend: BackendSpec = Field({"name": "embedding-cluster"}, description="The diarizer and its options.")
    keep_given: bool = Field(True, description="Keep the speaker turns the input gave (RTTM, manifest) "
                                               "instead of diarizing those recordings.")

    _backend = backend_field("diarizer")


class DiarizeStage(Stage[Recording, Recording]):
    """Find who speaks when in each recording: speaker turns for the later stages."""

    name = "diarize"
    Config = DiarizeConfig
    input_type = Recording
    output_type = Recording

    def setup(self) -> None:
        self.diarizer = self.config.backend.build()

    def process_batch(self, items: list[Recording]) -> Iterator[Recording | Skip]:
        for recording in items:
            if self.config.keep_given and recording.speaker_turns is not None:
                self.count("recordings_given")
                yield _with_diarization(recording, recording.speaker_turns, TURNS_MODEL)
                continue
            try:
                turns = self.diarizer.diarize(recording.audio, recording.duration)
            except (OSError, RuntimeError, ValueError) as exc:  # unreadable audio, a model failing on it
                logger.warning("cannot diarize %s: %s", recording.id, exc)
                self.count("failed")
                yield recording.model_copy(update={"diarization": Diarization(
                    model=self.diarizer.model_name, skipped=True, reason=f"{type(exc).__name__}: {exc}")})
                continue
            self.count("recordings_diarized")
            self.count("turns", len(turns))
            yield _with_diarization(recording, turns, self.diarizer.model_name, replace=True)


def _with_diarization(recording: Recording, turns: list[Turn], model: str, replace: bool = False) -> Recording:
    update = {"diarization": Diarization(model=model, speaker_count=len({t.speaker for t in turns}))}
    if replace:
        update["speaker_turns"] = turns
    return recording.model_copy(update=update)
