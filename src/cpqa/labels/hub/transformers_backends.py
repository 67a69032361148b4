"""transformers backends: any HF `audio-classification` emotion model, the audEERING MSP-dim model
(arousal, dominance, valence) and the audEERING age/gender model.

The audEERING checkpoints are Wav2Vec2 encoders with small heads on the mean of the last hidden
states (their model cards define the classes; they are rebuilt here with the same parameter names,
so `from_pretrained` loads the published weights). Padded frames are left out of the mean, so a
window gives the same output alone or in a batch. Models with a group-norm feature encoder are
never given padded batches (`pads_safely`).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from pydantic import Field

from ...errors import CPQAError, require
from ...requirements import Package, Requirement
from ..protocols import AudioWindow, CategoricalResult, DimensionResult, SpeakerResult
from .batching import HubConfig, duration_batches, to_emotion2vec, torch_device

MIN_SAMPLES = 400
"""Wav2Vec2's convolutional front end needs at least 25 ms of audio."""


def _transformers():
    return require("transformers", "gpu")


def _torch():
    return require("torch", "gpu")


class TransformersHubConfig(HubConfig):
    def requirements(self) -> list[Requirement]:
        return [Package("torch", "gpu"), Package("transformers", "gpu")]


def build_audeering_classes():
    """The audEERING model classes (Wav2Vec2 + mean pooling + tanh MLP heads), built lazily."""
    torch = _torch()
    transformers = _transformers()
    nn = torch.nn

    class ModelHead(nn.Module):
        def __init__(self, config, num_labels):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.dropout = nn.Dropout(config.final_dropout)
            self.out_proj = nn.Linear(config.hidden_size, num_labels)

        def forward(self, features):
            return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(features)))))

    class _Pooled(transformers.Wav2Vec2PreTrainedModel):
        def pooled(self, input_values, attention_mask):
            hidden = self.wav2vec2(input_values, attention_mask=attention_mask)[0]
            lengths = self.wav2vec2._get_feat_extract_output_lengths(attention_mask.sum(dim=1))
            frames = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]
            frames = frames.to(hidden.dtype)[..., None]
            return (hidden * frames).sum(dim=1) / frames.sum(dim=1).clamp(min=1)

    class AudeeringDimensionModel(_Pooled):
        """wav2vec2-large-robust-12-ft-emotion-msp-dim: outputs arousal, dominance, valence."""

        def __init__(self, config):
            super().__init__(config)
            self.wav2vec2 = transformers.Wav2Vec2Model(config)
            self.classifier = ModelHead(config, config.num_labels)
            self.post_init()

        def forward(self, input_values, attention_mask):
            return self.classifier(self.pooled(input_values, attention_mask))

    class AudeeringAgeGenderModel(_Pooled):
        """wav2vec2-large-robust-24-ft-age-gender: age (0..1 = 0..100 years), female/male/child."""

        def __init__(self, config):
            super().__init__(config)
            self.wav2vec2 = transformers.Wav2Vec2Model(config)
            self.age = ModelHead(config, 1)
            self.gender = ModelHead(config, 3)
            self.post_init()

        def forward(self, input_values, attention_mask):
            hidden = self.pooled(input_values, attention_mask)
            return self.age(hidden), torch.softmax(self.gender(hidden), dim=1)

    return AudeeringDimensionModel, AudeeringAgeGenderModel


def load_pretrained(model_id: str, model_cls, device: str, fp16: bool):
    """(feature extractor, model in eval mode on the device, torch device, dtype) of a hub id or a
    local folder; float16 only on CUDA when `fp16`."""
    transformers = _transformers()
    torch_dev, dtype = torch_device(device, fp16)
    try:
        extractor = transformers.AutoFeatureExtractor.from_pretrained(model_id)
        model = model_cls.from_pretrained(model_id)
    except OSError as exc:
        raise CPQAError(f"cannot load '{model_id}' (a hub id needs internet or a cached copy; "
                        f"or give a local folder): {exc}") from exc
    model.to(device=torch_dev, dtype=dtype).eval()
    return extractor, model, torch_dev, dtype


class _TransformersBackend:
    Config = TransformersHubConfig

    def __init__(self, config: HubConfig):
        self.config = config
        self.model_name = config.model

    def _load(self, model_cls):
        return load_pretrained(self.config.model, model_cls, self.config.device, self.config.fp16)

    def _run(self, windows: list[AudioWindow], forward) -> list:
        """`forward(inputs)` on duration-sorted batches; one output row per window, in order."""
        torch = _torch()
        extractor, model, device, dtype = self.loaded
        padded = pads_safely(extractor, model.config)
        outputs: list = [None] * len(windows)
        for batch in duration_batches(windows, self.config.batch_seconds):
            signals = {}
            for i in batch:
                samples = windows[i].samples()
                if len(samples) < MIN_SAMPLES:
                    samples = np.pad(samples, (0, MIN_SAMPLES - len(samples)))
                signals[i] = samples
            for group in ([batch] if padded else equal_length_groups(batch, signals)):
                inputs = extractor([signals[i] for i in group], sampling_rate=16000, padding=True,
                                   return_attention_mask=True, return_tensors="pt")
                inputs = {k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
                          for k, v in inputs.items()}
                with torch.inference_mode():
                    rows = forward(model, inputs)
                for i, row in zip(group, rows):
                    outputs[i] = row
        return outputs


def pads_safely(extractor, model_config) -> bool:
    """Whether windows of different lengths may share a zero-padded batch with an attention mask.
    Not for a group-norm feature encoder (wav2vec2-base, HuBERT-base: `feat_extract_norm ==
    "group"`, whose extractors say `return_attention_mask=False`): its GroupNorm normalises each
    channel over all frames, padded ones included, so a window's output would depend on its batch
    mates. Those models get batches of equal-length windows only (their all-ones mask is a no-op)."""
    return (bool(getattr(extractor, "return_attention_mask", False))
            and getattr(model_config, "feat_extract_norm", None) != "group")


def equal_length_groups(batch: list[int], signals: dict[int, np.ndarray]) -> list[list[int]]:
    """The indices of `batch` grouped by the length of their signals (nothing to pad in a group)."""
    groups: dict[int, list[int]] = {}
    for i in batch:
        groups.setdefault(len(signals[i]), []).append(i)
    return list(groups.values())


class HFAudioClassificationEmotion(_TransformersBackend):
    """Any HF `audio-classification` emotion model; its labels are mapped onto emotion2vec's."""

    class Config(TransformersHubConfig):
        label_map: dict[str, str] = Field(default_factory=dict,
                                          description="Model label → emotion2vec label, beside the built-in stems.")

    @cached_property
    def loaded(self):
        return self._load(_transformers().AutoModelForAudioClassification)

    def predict(self, windows: list[AudioWindow]) -> list[CategoricalResult]:
        if not windows:
            return []
        model = self.loaded[1]
        names = [to_emotion2vec(model.config.id2label[i], self.config.label_map)
                 for i in range(len(model.config.id2label))]

        def forward(model, inputs):
            return model(**inputs).logits.float().softmax(dim=-1).cpu().numpy()

        out = []
        for p in self._run(windows, forward):
            probs: dict[str, float] = {}
            for name, value in zip(names, p):
                probs[name] = probs.get(name, 0.0) + float(value)
            out.append(CategoricalResult.from_probs(probs))
        return out


class AudeeringDimensions(_TransformersBackend):
    """audEERING wav2vec2-large-robust MSP-Podcast model: arousal, dominance, valence (≈ 0..1)."""

    derived = False
    ORDER = ("arousal", "dominance", "valence")
    """Output order of the published model, used when its config names no labels."""

    class Config(TransformersHubConfig):
        model: str = "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim"

    @cached_property
    def loaded(self):
        return self._load(build_audeering_classes()[0])

    def predict(self, windows: list[AudioWindow], emotions: list[CategoricalResult]) -> list[DimensionResult]:
        if not windows:
            return []
        model = self.loaded[1]
        names = [str(model.config.id2label.get(i, "")).lower() for i in range(model.config.num_labels)]
        if not set(self.ORDER) <= set(names):
            names = list(self.ORDER)
        rows = self._run(windows, lambda m, inputs: m(**inputs).float().cpu().numpy())
        out = []
        for row in rows:
            values = dict(zip(names, map(float, row)))
            out.append(DimensionResult(valence=round(values["valence"], 4), arousal=round(values["arousal"], 4),
                                       dominance=round(values["dominance"], 4)))
        return out


class AudeeringAgeGender(_TransformersBackend):
    """audEERING wav2vec2-large-robust age/gender model: age in years, female/male/child."""

    GENDERS = ("female", "male", "child")

    class Config(TransformersHubConfig):
        model: str = "audeering/wav2vec2-large-robust-24-ft-age-gender"

    @cached_property
    def loaded(self):
        return self._load(build_audeering_classes()[1])

    def predict(self, windows: list[AudioWindow]) -> list[SpeakerResult]:
        if not windows:
            return []

        def forward(model, inputs):
            age, gender = model(**inputs)
            return np.concatenate([age.float().cpu().numpy(), gender.float().cpu().numpy()], axis=1)

        return [SpeakerResult(gender=CategoricalResult.from_probs(dict(zip(self.GENDERS, map(float, row[1:])))),
                              age_years=round(float(row[0]) * 100, 1))
                for row in self._run(windows, forward)]
