"""`make gpu-check`: what one GPU does with the `paper` recipe's models, in one run.

    python -m benchmarks.gpu_check               # CUDA: real sizes; CPU: --tiny
    python -m benchmarks.gpu_check --json out.json

On CUDA it builds random-weight models of the real sizes and architectures (wav2vec2-large-robust
with the audEERING dimension head, 12 layers; the audEERING age/gender model, 24 layers; a
Qwen2-Audio-7B-sized model in bfloat16), or uses the real weights where the Hugging Face cache holds
them, and runs them through cpqa's own backends and adapters:

- annotate: every 4-s window (2 s centre + 1 s context, hop 2 s, as `annotate` cuts them) of an
  hour of synthetic speech-like audio (tone-plus-noise bursts and pauses), per backend; printed
  as labelled audio-hours per GPU-hour. emotion2vec+ runs through FunASR when FunASR and its
  cached weights are there (FunASR cannot build one with random weights).
- evaluate: Qwen2-Audio answers a batch of 30-s clips through transformers and, when vLLM is
  installed, through vLLM (random weights: `load_format=dummy`); printed as answers per second.
  A random model's answers are forced to `--max-new-tokens` so runs compare.

For each it prints the batch size it chose (doubling while throughput grows by 5 % or more and
memory lasts) and the peak GPU memory. Without CUDA it runs the same code on tiny shapes
(`--tiny`), which is how the test suite checks it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cpqa.labels.protocols import AudioWindow, CategoricalResult
from cpqa.labels.windows import layout
from cpqa.registry import backend_registry
from cpqa.testing.audio import write_bursts

logger = logging.getLogger("benchmarks.gpu_check")

GAIN = 1.05
"""A doubled batch is kept only if it is at least this much faster."""
QWEN2_AUDIO_7B = {
    "audio_config": {"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120,
                     "num_mel_bins": 128, "max_source_positions": 1500},
    "text_config": {"model_type": "qwen2", "vocab_size": 156032, "hidden_size": 4096, "intermediate_size": 11008,
                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                    "max_position_embeddings": 8192, "rope_theta": 10000.0},
}
"""Qwen2-Audio-7B-Instruct's published shapes (8.4 B parameters)."""
HUB = {"dimensions": "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim",
       "age-gender": "audeering/wav2vec2-large-robust-24-ft-age-gender",
       "emotion2vec": "emotion2vec/emotion2vec_plus_large", "qwen2-audio": "Qwen/Qwen2-Audio-7B-Instruct"}


def cached(model_id: str) -> bool:
    """Whether the Hugging Face cache holds this model (then its real weights are used)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(model_id, "config.json"), str)


class Meter:
    """Peak GPU memory and wall time of one measured call."""

    def __init__(self, torch, device: str):
        self.torch, self.cuda = torch, device.startswith("cuda")

    def __call__(self, fn: Callable[[], object]) -> tuple[object, float, float | None]:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        out = fn()
        if self.cuda:
            self.torch.cuda.synchronize()
        wall = time.perf_counter() - started
        peak = self.torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None
        return out, wall, peak


def choose_batch(candidates: list, rate: Callable[[object], float], oom: type[BaseException]) -> object:
    """The candidate batch size with the best rate, doubling while it grows by GAIN and fits."""
    best, best_rate = candidates[0], rate(candidates[0])
    for size in candidates[1:]:
        try:
            r = rate(size)
        except oom:
            break
        if r < best_rate * GAIN:
            break
        best, best_rate = size, r
    return best


def windows_of(path: Path, duration_s: float) -> list[AudioWindow]:
    """annotate's windows over the whole file as one segment: 2-s centres, 1 s of context both sides."""
    return [AudioWindow("synthetic", str(path), span.context_start, span.context_end, "synthetic/S1")
            for span in layout(0.0, duration_s)]


def annotate_backends(args, work: Path, device: str) -> list[tuple[str, str, object]]:
    """(capability, backend name, built backend) for each annotate model of the paper recipe."""
    from cpqa.testing.tiny_models import build_audeering_model

    out = []
    for capability, name, kind in (("dimensions", "audeering-msp-dim", "dimensions"),
                                   ("speaker", "audeering-age-gender", "age-gender")):
        model = HUB[kind] if cached(HUB[kind]) else str(build_audeering_model(work / kind, kind, real_size=not args.tiny))
        cls = backend_registry(capability).get(name)
        out.append((capability, name, cls(cls.Config(model=model, device=device))))
    if importlib.util.find_spec("funasr") and cached(HUB["emotion2vec"]):
        cls = backend_registry("emotion").get("emotion2vec")
        # the paper recipe's id; FunASR's hub=hf reads it from emotion2vec/ on the Hugging Face hub
        out.append(("emotion", "emotion2vec", cls(cls.Config(model="iic/emotion2vec_plus_large", device=device))))
    else:
        logger.warning("emotion2vec+: skipped (needs FunASR and %s in the Hugging Face cache)", HUB["emotion2vec"])
    return out


def run_annotate(args, work: Path, device: str, torch, meter: Meter) -> list[dict]:
    audio = write_bursts(work / "speech-like.wav", args.audio_s)
    windows = windows_of(audio, args.audio_s)
    probe = windows[: max(8, len(windows) // 20)]
    results = []
    for capability, name, backend in annotate_backends(args, work, device):
        def predict(ws, backend=backend, capability=capability):
            return backend.predict(ws, [CategoricalResult()] * len(ws)) if capability == "dimensions" else backend.predict(ws)

        predict(probe[:2])  # load the model and warm up

        def rate(batch_seconds, backend=backend, predict=predict):
            backend.config.batch_seconds = batch_seconds
            _, wall, _ = meter(lambda: predict(probe))
            return len(probe) / wall

        backend.config.batch_seconds = choose_batch(args.batch_seconds, rate, torch.cuda.OutOfMemoryError)
        labelled, wall, peak = meter(lambda: predict(windows))
        assert len(labelled) == len(windows)
        results.append({"backend": name, "model": backend.model_name, "audio_s": args.audio_s, "wall_s": wall,
                        "audio_hours_per_gpu_hour": args.audio_s / wall, "batch_seconds": backend.config.batch_seconds,
                        "peak_gpu_gib": peak})
    return results


def qwen2_audio_model(args, work: Path, device: str, torch):
    """(model id or folder, injected model or None): the cached real model, the tiny one saved by
    the test builder, or a 7B-sized random one built in memory (saving 16 GB would dominate)."""
    from cpqa.testing.tiny_models import build_tiny_qwen2_audio

    if cached(HUB["qwen2-audio"]):
        return HUB["qwen2-audio"], None
    folder = build_tiny_qwen2_audio(work / "qwen2-audio", ["What emotion does the speaker sound like?"])
    if args.tiny:
        return str(folder), None
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    config = transformers.Qwen2AudioConfig(
        **QWEN2_AUDIO_7B, audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    config.text_config.eos_token_id, config.text_config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    config.save_pretrained(folder)  # the 7B shapes beside the processor: vLLM's dummy weights read them
    with torch.device(device):
        torch.set_default_dtype(torch.bfloat16)
        try:
            model = transformers.Qwen2AudioForConditionalGeneration(config)
        finally:
            torch.set_default_dtype(torch.float32)
    return str(folder), model.eval()


def run_evaluate(args, work: Path, device: str, torch, meter: Meter) -> list[dict]:
    from cpqa.evaluate.protocol import SpeechQuery
    from cpqa.evaluate.qwen2_audio import Qwen2AudioConfig, Qwen2AudioTransformers
    from cpqa.testing.audio import bursts

    queries = [SpeechQuery(f"clip-{i}", [bursts(args.clip_s, seed=i)], "How does the speaker feel, and why?")
               for i in range(args.clips)]
    model_id, injected = qwen2_audio_model(args, work, device, torch)
    adapter = Qwen2AudioTransformers(Qwen2AudioConfig(model=model_id, device=device, temperature=0.0,
                                                      max_new_tokens=args.max_new_tokens))
    if injected is None:
        adapter._load()
    else:
        _inject(adapter, injected, model_id)
    if "Qwen/" not in model_id:  # random weights: fixed answer lengths
        adapter._model.generation_config.min_new_tokens = args.max_new_tokens
    results = []

    def rate(batch_size):  # two batches of this size (or every clip)
        adapter.config.batch_size = batch_size
        answers, wall, _ = meter(lambda: adapter.answer_many(queries[:2 * batch_size]))
        if any(a.skipped for a in answers):
            raise torch.cuda.OutOfMemoryError("a batch was answered one by one")
        return len(answers) / wall

    adapter.answer_many(queries[:1])  # warm up
    adapter.config.batch_size = choose_batch(args.qa_batch_sizes, rate, torch.cuda.OutOfMemoryError)
    answers, wall, peak = meter(lambda: adapter.answer_many(queries))
    results.append({"backend": "qwen2-audio (transformers)", "model": model_id, "answers": len(answers),
                    "answered": sum(not a.skipped for a in answers), "wall_s": wall, "answers_per_s": len(answers) / wall,
                    "batch_size": adapter.config.batch_size, "peak_gpu_gib": peak})
    adapter.close()
    del injected
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    if device.startswith("cuda") and importlib.util.find_spec("vllm"):
        results.append(run_vllm(args, model_id, queries, meter))
    else:
        logger.warning("qwen2-audio (vLLM): skipped (needs CUDA and cpqa[vllm])")
    return results


def _inject(adapter, model, model_id: str) -> None:
    """Give the transformers adapter an in-memory model with the processor saved beside its config."""
    import transformers

    adapter._model = model
    adapter._processor = transformers.AutoProcessor.from_pretrained(model_id)
    adapter._processor.tokenizer.padding_side = "left"


def run_vllm(args, model_id: str, queries, meter: Meter) -> dict:
    from cpqa.evaluate.qwen2_audio_vllm import Qwen2AudioVLLM, Qwen2AudioVLLMConfig

    dummy = {} if "Qwen/" in model_id else {"load_format": "dummy"}
    adapter = Qwen2AudioVLLM(Qwen2AudioVLLMConfig(model=model_id, temperature=0.0, max_new_tokens=args.max_new_tokens,
                                                  batch_size=len(queries), engine_kwargs=dummy))
    adapter.answer_many(queries[:1])  # start the engine
    answers, wall, _ = meter(lambda: adapter.answer_many(queries))
    adapter.close()
    # vLLM reserves gpu_memory_utilization (0.9) of the GPU for its cache whatever the load: no peak
    return {"backend": "qwen2-audio (vLLM)", "model": model_id, "answers": len(answers),
            "answered": sum(not a.skipped for a in answers), "wall_s": wall, "answers_per_s": len(answers) / wall,
            "batch_size": len(queries), "peak_gpu_gib": None}


def main(argv: list[str] | None = None) -> dict:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and little audio (default without CUDA)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--audio-s", type=float, help="synthetic audio to annotate (default 3600; tiny 20)")
    parser.add_argument("--clips", type=int, help="30-s clips to answer (default 64; tiny 2)")
    parser.add_argument("--max-new-tokens", type=int, help="answer length (default 64; tiny 4)")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.tiny = args.tiny or device == "cpu"
    args.audio_s = args.audio_s or (20.0 if args.tiny else 3600.0)
    args.clips = args.clips or (2 if args.tiny else 64)
    args.clip_s = 30.0
    args.max_new_tokens = args.max_new_tokens or (4 if args.tiny else 64)
    args.batch_seconds = [16.0, 32.0] if args.tiny else [64.0, 128.0, 256.0, 512.0, 1024.0]
    args.qa_batch_sizes = [1, 2] if args.tiny else [1, 2, 4, 8, 16, 32, 64]
    meter = Meter(torch, device)
    with tempfile.TemporaryDirectory(prefix="cpqa-gpu-check-") as tmp:
        work = Path(tmp)
        report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "tiny": args.tiny,
                  "annotate": run_annotate(args, work, device, torch, meter),
                  "evaluate": run_evaluate(args, work, device, torch, meter)}
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


def render(report: dict) -> str:
    def gib(v):
        return "-" if v is None else f"{v:.1f} GiB"

    lines = [f"gpu-check on {report['device']}" + (" (tiny shapes: not a measurement)" if report["tiny"] else "")]
    for r in report["annotate"]:
        lines.append(f"  annotate {r['backend']:<26} {r['audio_hours_per_gpu_hour']:10.1f} audio-h per GPU-h   "
                     f"batch {r['batch_seconds']:g} s   peak {gib(r['peak_gpu_gib'])}")
    for r in report["evaluate"]:
        lines.append(f"  evaluate {r['backend']:<26} {r['answers_per_s']:10.2f} answers/s   "
                     f"batch {r['batch_size']}   peak {gib(r['peak_gpu_gib'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
