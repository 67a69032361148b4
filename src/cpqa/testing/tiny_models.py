"""Tiny random-weight models of the real architectures, built locally (nothing downloaded), so the
real loading and inference code is tested on CPU in seconds."""

from __future__ import annotations

from pathlib import Path

QWEN2_AUDIO_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
TEMPLATE_WORDS = ["system user assistant You are a helpful assistant.", "Audio 1: 2: 3:"]


def build_tiny_qwen2_audio(folder: Path, texts: list[str], *, chunk_s: int = 30, vocab_size: int = 600,
                           head_std: float | None = None) -> Path:
    """Save a tiny Qwen2-Audio (1-layer audio encoder and decoder) with its real processor: a BPE
    tokenizer trained here on `texts`, a Whisper feature extractor and Qwen2-Audio's chat template.

    `chunk_s` is its audio window (30 s in the real model; smaller is faster: use the same
    `max_audio_s` when evaluating). `head_std` redraws the output head wider than the default
    init: a frozen near-zero head (LoRA) pins the logits near uniform so few steps overfit nothing.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator((TEMPLATE_WORDS + list(texts)) * 2, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=QWEN2_AUDIO_SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    processor = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128, chunk_length=chunk_s),
                                    tokenizer=tokenizer)
    config = Qwen2AudioConfig(
        audio_config={"d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
                      "num_mel_bins": 128, "max_source_positions": chunk_s * 50},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "max_position_embeddings": 4096, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(config)
    if head_std is not None:
        torch.nn.init.normal_(model.lm_head.weight, 0.0, head_std)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


WAV2VEC2_LARGE_ROBUST = {"hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096}
"""wav2vec2-large-robust's encoder (the conv front end is Wav2Vec2Config's default, the real one)."""
WAV2VEC2_TINY = {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32, "conv_dim": (8, 8),
                 "conv_kernel": (10, 3), "conv_stride": (5, 2), "num_conv_pos_embeddings": 8,
                 "num_conv_pos_embedding_groups": 2}
AUDEERING_LAYERS = {"dimensions": 12, "age-gender": 24}
"""Encoder layers kept by the published audEERING models (msp-dim "12-ft", age-gender "24-ft")."""


def build_audeering_model(folder: Path, kind: str, *, real_size: bool = False) -> Path:
    """Save a random-weight audEERING model (`kind`: dimensions or age-gender) with its feature
    extractor: wav2vec2-large-robust-sized with `real_size`, else a 1-layer model of width 16."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor

    from ..labels.hub.transformers_backends import build_audeering_classes

    shape = {**WAV2VEC2_LARGE_ROBUST, "num_hidden_layers": AUDEERING_LAYERS[kind]} if real_size else \
        {**WAV2VEC2_TINY, "num_hidden_layers": 1}
    labels = {"num_labels": 3, "id2label": {0: "arousal", 1: "dominance", 2: "valence"}} if kind == "dimensions" else {}
    config = Wav2Vec2Config(**shape, **labels, feat_extract_norm="layer", do_stable_layer_norm=True, final_dropout=0.0,
                            hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
                            layerdrop=0.0)
    dimension_cls, age_gender_cls = build_audeering_classes()
    torch.manual_seed(0)
    (dimension_cls if kind == "dimensions" else age_gender_cls)(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder
