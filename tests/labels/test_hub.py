"""Hub backends on tiny random-weight models of the real architectures, built here (no download)."""

import importlib.util

import numpy as np
import pytest
import soundfile as sf

from cpqa.emotions import EMOTIONS, SENTIMENT_OF
from cpqa.errors import MissingExtraError
from cpqa.labels.hub.batching import duration_batches, to_emotion2vec
from cpqa.labels.hub.emotion2vec import EnsembleEmotion, parse_funasr_result
from cpqa.labels.protocols import AudioWindow, CategoricalResult
from cpqa.registry import backend_registry
from cpqa.stage import Config as StageConfigBase

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def _tiny_config(**extra):
    return transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True,
        final_dropout=0.0, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        feat_proj_dropout=0.0, layerdrop=0.0, classifier_proj_size=8, **extra)


def _save(model, folder):
    torch.manual_seed(0)
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("audio") / "rec.flac"
    sf.write(path, (0.1 * rng.standard_normal(16000 * 6)).astype(np.float32), 16000)
    spans = [(0.0, 0.5), (0.5, 2.0), (1.0, 1.3), (2.0, 6.0), (3.0, 3.01)]
    return [AudioWindow("rec", str(path), a, b, "rec/S1") for a, b in spans]


def _single_vs_batch(backend_cls, config, windows, call):
    batched = call(backend_cls(backend_cls.Config(**config, batch_seconds=100.0)), windows)
    single = call(backend_cls(backend_cls.Config(**config, batch_seconds=0.001)), windows)
    return batched, single


def test_audeering_dimensions(tmp_path, windows):
    from cpqa.labels.hub.transformers_backends import build_audeering_classes

    dim_cls, _ = build_audeering_classes()
    config = _tiny_config(num_labels=3, id2label={0: "arousal", 1: "dominance", 2: "valence"})
    folder = _save(dim_cls(config), tmp_path / "msp-dim")
    backend_cls = backend_registry("dimensions").get("audeering-msp-dim")
    batched, single = _single_vs_batch(backend_cls, {"model": folder, "device": "cpu"}, windows,
                                       lambda b, w: b.predict(w, [CategoricalResult()] * len(w)))
    assert len(batched) == len(windows) and not backend_cls.derived
    for a, b in zip(batched, single):
        assert a.valence == pytest.approx(b.valence, abs=1e-3) and a.arousal == pytest.approx(b.arousal, abs=1e-3)
        assert all(isinstance(v, float) for v in (a.valence, a.arousal, a.dominance))
    # the label order comes from the config: swapping names swaps outputs
    model = dim_cls.from_pretrained(folder)
    x = torch.tensor(windows[1].samples())[None]
    normed = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
    raw = model(normed, torch.ones_like(x, dtype=torch.long))[0].detach().numpy()
    assert batched[1].arousal == pytest.approx(raw[0], abs=1e-3) and batched[1].valence == pytest.approx(raw[2], abs=1e-3)


def test_audeering_age_gender(tmp_path, windows):
    from cpqa.labels.hub.transformers_backends import build_audeering_classes

    _, age_gender_cls = build_audeering_classes()
    folder = _save(age_gender_cls(_tiny_config()), tmp_path / "age-gender")
    backend_cls = backend_registry("speaker").get("audeering-age-gender")
    batched, single = _single_vs_batch(backend_cls, {"model": folder, "device": "cpu"}, windows,
                                       lambda b, w: b.predict(w))
    for a, b in zip(batched, single):
        assert set(a.gender.probs) == {"female", "male", "child"}
        assert sum(a.gender.probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert a.gender.label == max(a.gender.probs, key=a.gender.probs.get)
        assert a.age_years == pytest.approx(b.age_years, abs=0.1)
        assert a.gender.probs == pytest.approx(b.gender.probs, abs=1e-3)


def test_hf_audio_classification_maps_labels(tmp_path, windows):
    labels = {0: "ang", 1: "hap", 2: "neu", 3: "sad", 4: "calm", 5: "boredom"}
    config = _tiny_config(num_labels=6, id2label=labels, label2id={v: k for k, v in labels.items()})
    folder = _save(transformers.Wav2Vec2ForSequenceClassification(config), tmp_path / "ser")
    backend_cls = backend_registry("emotion").get("hf-audio-classification")
    batched, single = _single_vs_batch(backend_cls, {"model": folder, "device": "cpu"}, windows,
                                       lambda b, w: b.predict(w))
    for a, b in zip(batched, single):
        assert set(a.probs) == {"angry", "happy", "neutral", "sad", "other"}  # calm → neutral, boredom → other
        assert sum(a.probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert a.probs == pytest.approx(b.probs, abs=1e-3)


def _group_norm_config(cls, **extra):
    """wav2vec2-base / HuBERT-base: a GroupNorm feature encoder, post-norm transformer."""
    return cls(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
               conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
               feat_extract_norm="group", do_stable_layer_norm=False, hidden_dropout=0.0, attention_dropout=0.0,
               activation_dropout=0.0, feat_proj_dropout=0.0, final_dropout=0.0, layerdrop=0.0,
               classifier_proj_size=8, **extra)


def _classifier(kind: str, folder):
    """A tiny audio classifier saved with the feature extractor its real counterpart ships."""
    torch.manual_seed(0)
    labels = {0: "angry", 1: "happy", 2: "neutral", 3: "sad"}
    extra = {"num_labels": 4, "id2label": labels, "label2id": {v: k for k, v in labels.items()}}
    if kind == "layer":  # wav2vec2-large-robust: layer norm, the extractor returns a mask
        model, attention_mask = transformers.Wav2Vec2ForSequenceClassification(_tiny_config(**extra)), True
    else:
        config_cls, model_cls = {"wav2vec2-base": (transformers.Wav2Vec2Config, transformers.Wav2Vec2ForSequenceClassification),
                                 "hubert-base": (transformers.HubertConfig, transformers.HubertForSequenceClassification)}[kind]
        model, attention_mask = model_cls(_group_norm_config(config_cls, **extra)), False
    for name, weight in model.named_parameters():  # the default init gives near-uniform probabilities
        if name.startswith(("projector", "classifier")) and weight.dim() == 2:
            torch.nn.init.normal_(weight, 0.0, 0.6)
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=attention_mask).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("kind", ["wav2vec2-base", "hubert-base", "layer"])
def test_batch_mates_never_change_a_windows_probabilities(tmp_path, windows, kind):
    backend_cls = backend_registry("emotion").get("hf-audio-classification")
    backend = backend_cls(backend_cls.Config(model=_classifier(kind, tmp_path / kind), device="cpu", batch_seconds=100.0))
    model = backend.loaded[1]
    widths: list[list[int]] = []  # per forward pass: the unpadded length of each window in it
    forward = model.forward
    model.forward = lambda input_values, attention_mask=None, **kw: (
        widths.append(attention_mask.sum(dim=1).tolist()) or forward(input_values, attention_mask=attention_mask, **kw))
    short, long = windows[1], windows[3]  # 1.5 s and 4 s
    (alone,) = backend.predict([short])
    together = backend.predict([short, long])
    if kind == "layer":  # one padded batch, masked: the same probabilities within float error
        assert together[0].probs == pytest.approx(alone.probs, abs=1e-5)
        assert widths[1:] == [[24000, 64000]]
    else:  # a group-norm encoder never sees padding: one window per pass here, identical outputs
        assert together[0].probs == alone.probs and together[1].probs == backend.predict([long])[0].probs
        assert widths[1:3] == [[24000], [64000]]


def test_label_mapping_and_duration_batches(windows):
    assert [to_emotion2vec(x) for x in ("生气/angry", "Anger", "joy", "calm", "Surprise", "boredom")] == [
        "angry", "angry", "happy", "neutral", "surprised", "other"]
    batches = list(duration_batches(windows, batch_seconds=4.5))
    assert sorted(i for b in batches for i in b) == list(range(len(windows)))
    for batch in batches:
        longest = max(windows[i].duration for i in batch)
        assert len(batch) == 1 or longest * len(batch) <= 4.5


EMOTION2VEC_PLUS_LABELS = ["生气/angry", "厌恶/disgusted", "恐惧/fearful", "开心/happy", "中立/neutral", "其他/other",
                          "难过/sad", "吃惊/surprised", "<unk>"]
"""The labels emotion2vec+ (seed, base, large) reports, in its order: the ninth is a bare `<unk>`."""


def test_funasr_result_parsing_with_the_real_labels():
    scores = [0.05, 0.0, 0.0, 0.25, 0.1, 0.0, 0.0, 0.0, 0.6]
    result = parse_funasr_result({"labels": EMOTION2VEC_PLUS_LABELS, "scores": scores})
    assert result.label == "unknown" and result.score == pytest.approx(0.6)
    assert result.probs["other"] == 0.0 and result.probs["happy"] == pytest.approx(0.25)
    assert set(result.probs) == set(EMOTIONS)
    assert [to_emotion2vec(x) for x in EMOTION2VEC_PLUS_LABELS] == list(EMOTIONS)
    assert "unknown" not in SENTIMENT_OF  # like 'other', no sentiment


def test_emotion2vec_without_funasr_names_the_extra(windows):
    if importlib.util.find_spec("funasr") is not None:
        pytest.skip("funasr is installed")
    backend_cls = backend_registry("emotion").get("emotion2vec")
    backend = backend_cls(backend_cls.Config(device="cpu"))
    with pytest.raises(MissingExtraError, match=r"cpqa\[gpu\]"):
        backend.predict(windows[:1])


class _Fixed:
    def __init__(self, config):
        self.model_name = f"fixed-{config.label}"
        self.label = config.label

    class Config(StageConfigBase):
        label: str

    def predict(self, windows):
        return [CategoricalResult.from_probs({self.label: 0.8, "neutral": 0.2}) for _ in windows]


def test_ensemble_averages_member_probabilities(windows):
    backend_registry("emotion").add("test-fixed", _Fixed)
    config = EnsembleEmotion.Config(members=[{"name": "test-fixed", "label": "happy"},
                                             {"name": "test-fixed", "label": "sad"}], weights=[3, 1])
    (result,) = EnsembleEmotion(config).predict(windows[:1])
    assert result.probs == pytest.approx({"happy": 0.6, "sad": 0.2, "neutral": 0.2})
    assert result.label == "happy"
