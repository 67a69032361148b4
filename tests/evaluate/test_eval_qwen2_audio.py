"""The Qwen2-Audio adapters: the transformers one end to end on a tiny random-weight Qwen2-Audio
built here (a locally trained BPE tokenizer, a Whisper feature extractor, the processor's chat
template with audio, generation on CPU); the vLLM one against a stand-in `vllm` module."""

import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest

from cpqa.errors import MissingExtraError
from cpqa.evaluate.protocol import SpeechQuery
from cpqa.records import Turn
from cpqa.testing.tiny_models import build_tiny_qwen2_audio

pytestmark = pytest.mark.timeout(300)

CORPUS = ["What does the speaker feel? happy sad angry",
          "Is the speaker male or female? How many people speak? The speaker sounds calm."]


def queries():
    rng = np.random.default_rng(0)
    audio = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000 * 3, 16000 * 2, 16000)]
    return [SpeechQuery("a#0", [audio[0]], "What does the speaker feel?"),
            SpeechQuery("b#1", [audio[1], audio[2]], "How many people speak?",
                        history=[Turn(question="Is the speaker male or female?", answer="female")])]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers")
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny-qwen2-audio"), CORPUS, vocab_size=400)


def test_transformers_adapter_end_to_end_on_a_tiny_model(tiny_model):
    from cpqa.evaluate.qwen2_audio import Qwen2AudioTransformers, conversation

    folder = tiny_model
    adapter = Qwen2AudioTransformers(Qwen2AudioTransformers.Config(model=str(folder), device="cpu", max_new_tokens=6,
                                                                    batch_size=2, local_files_only=True))
    batch = queries()
    answers = adapter.answer_many(batch)
    assert [a.ok for a in answers] == [True, True]
    assert all(isinstance(a.text, str) and a.model == str(folder) for a in answers)
    # the processor's template put one audio slot per piece and the history before the question
    prompt = adapter._processor.apply_chat_template(conversation(batch[1], None), add_generation_prompt=True,
                                                    tokenize=False)
    assert prompt.count("<|AUDIO|>") == 2 and prompt.index("female") < prompt.index("How many people speak?")
    assert prompt.endswith("<|im_start|>assistant\n")
    from cpqa.evaluate.qwen2_audio_vllm import qwen2_audio_prompt  # the vLLM adapter's prompt is the same text
    assert qwen2_audio_prompt(batch[1], "Be brief.") == adapter._processor.apply_chat_template(
        conversation(batch[1], "Be brief."), add_generation_prompt=True, tokenize=False)
    # batched and one-by-one greedy generation agree (left padding is right)
    alone = [adapter.answer_many([q])[0].text for q in batch]
    assert alone == [a.text for a in answers]
    assert adapter.dtype.is_floating_point and str(adapter.dtype) == "torch.float32"


def test_evaluate_with_the_tiny_model_on_real_clips(tiny_model, qa_set, server, tmp_path):
    from evalgen import endpoint

    from cpqa.evaluate import evaluate

    model = {"name": "qwen2-audio", "model": str(tiny_model), "device": "cpu", "max_new_tokens": 4, "batch_size": 4,
             "local_files_only": True}
    result = evaluate(qa_set["human"], tmp_path / "eval", model=model, judge=endpoint(server, "judge"))
    s = result.summary
    assert result.speechllm_queries == 3 and s["answer_failures"] == {} and s["n_scored"] == 3
    assert s["model"]["model"] == str(tiny_model) and s["model"]["options"]["dtype"] == "auto"


def test_transformers_missing_names_the_gpu_extra(monkeypatch):
    from cpqa.evaluate.qwen2_audio import Qwen2AudioTransformers

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r"cpqa\[gpu\]"):
        Qwen2AudioTransformers(Qwen2AudioTransformers.Config())


@dataclass
class SamplingParams:
    temperature: float = 1.0
    max_tokens: int = 16


@dataclass
class FakeEngine:
    """Answers with the number of audio pieces; rejects a batch holding a prompt that says 'huge'."""

    kwargs: dict
    calls: list = field(default_factory=list)

    def generate(self, inputs, sampling_params, use_tqdm=True):
        self.calls.append(inputs)
        if any("huge" in i["prompt"] for i in inputs):
            raise ValueError("The decoder prompt is longer than the maximum model length")
        return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f" {len(i['multi_modal_data']['audio'])} ")])
                for i in inputs]


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.SamplingParams = SamplingParams
    module.engines = []

    def make_llm(**kwargs):
        module.engines.append(FakeEngine(kwargs))
        return module.engines[-1]

    module.LLM = make_llm
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def test_vllm_adapter(fake_vllm):
    from cpqa.evaluate.qwen2_audio_vllm import Qwen2AudioVLLM

    adapter = Qwen2AudioVLLM(Qwen2AudioVLLM.Config(max_audio_pieces=3, temperature=0.0, max_new_tokens=32))
    batch = [*queries(), SpeechQuery("c#0", [np.zeros(160, np.float32)], "a huge question")]
    answers = adapter.answer_many(batch)
    assert [a.text for a in answers[:2]] == ["1", "2"]
    assert answers[2].skip_reason == "bad_request" and "maximum model length" in answers[2].error
    engine = fake_vllm.engines[0]
    assert engine.kwargs["model"] == "Qwen/Qwen2-Audio-7B-Instruct"
    assert engine.kwargs["limit_mm_per_prompt"] == {"audio": 3}
    first = engine.calls[0][1]
    assert first["prompt"] == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nAudio 2: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
        "Is the speaker male or female?<|im_end|>\n<|im_start|>assistant\nfemale<|im_end|>\n"
        "<|im_start|>user\nHow many people speak?<|im_end|>\n<|im_start|>assistant\n")
    assert [rate for _, rate in first["multi_modal_data"]["audio"]] == [16000, 16000]
    assert len(engine.calls) == 4  # the rejected batch, then one query at a time


def test_vllm_missing_names_the_vllm_extra(monkeypatch):
    from cpqa.evaluate.qwen2_audio_vllm import Qwen2AudioVLLM

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingExtraError, match=r"cpqa\[vllm\]"):
        Qwen2AudioVLLM(Qwen2AudioVLLM.Config())
