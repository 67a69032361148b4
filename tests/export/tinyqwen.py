"""A tiny random-weight Qwen2-Audio (1-layer audio encoder and decoder) with its real processor: a
BPE tokenizer trained here on the given texts, a Whisper feature extractor and the processor's
Qwen2-Audio chat template. Nothing is downloaded.

Its audio window is CHUNK_S seconds instead of Qwen2-Audio's 30 (the feature extractor pads every
piece to the window, and the encoder's cost follows the window): train and evaluate it with
max_audio_s=CHUNK_S. Its output head is drawn wider than the default init (std 0.3, not 0.02): the
head stays frozen under LoRA, and a near-zero head would pin the logits near uniform, so a few steps
could not overfit anything."""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
CHUNK_S = 5
TEMPLATE_WORDS = ["system user assistant You are a helpful assistant.", "Audio 1: 2: 3:"]


def build_tiny_qwen2_audio(folder: Path, texts: list[str]) -> Path:
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
    bpe.train_from_iterator((TEMPLATE_WORDS + texts) * 2, trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    processor = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128, chunk_length=CHUNK_S), tokenizer=tokenizer)
    config = Qwen2AudioConfig(
        audio_config={"d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
                      "num_mel_bins": 128, "max_source_positions": CHUNK_S * 50},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "max_position_embeddings": 4096, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(config)
    torch.nn.init.normal_(model.lm_head.weight, 0.0, 0.3)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
