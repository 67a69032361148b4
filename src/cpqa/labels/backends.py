"""Registers the label backends: the offline defaults by import, the hub backends by dotted path so
that their heavy imports (transformers, funasr) wait until a recipe names them."""

from ..registry import backend_registry
from . import probes  # noqa: F401  (whisper-probe emotion/speaker, circumplex dimensions)

_HUB = "cpqa.labels.hub"
_LAZY = {
    ("emotion", "emotion2vec"): (f"{_HUB}.emotion2vec:Emotion2VecEmotion", "gpu",
                                 "emotion2vec+ via FunASR (seed/base/large)"),
    ("emotion", "ensemble"): (f"{_HUB}.emotion2vec:EnsembleEmotion", None,
                              "Probability average of several emotion backends"),
    ("emotion", "hf-audio-classification"): (f"{_HUB}.transformers_backends:HFAudioClassificationEmotion", "gpu",
                                             "Any HF audio-classification emotion model, labels mapped to emotion2vec's"),
    ("dimensions", "audeering-msp-dim"): (f"{_HUB}.transformers_backends:AudeeringDimensions", "gpu",
                                          "audEERING wav2vec2 MSP-Podcast arousal/dominance/valence"),
    ("speaker", "audeering-age-gender"): (f"{_HUB}.transformers_backends:AudeeringAgeGender", "gpu",
                                          "audEERING wav2vec2 age and gender"),
}
for (capability, name), (target, extra, description) in _LAZY.items():
    backend_registry(capability).add(name, target, extra=extra, description=description)
