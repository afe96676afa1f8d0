"""A tiny random Pocket TTS checkpoint (model, processor, tokenizer, codec) for offline tests.

Built in memory from the real transformers classes and saved with ``save_pretrained``; ~70k
parameters, a few seconds on CPU. Its end-of-speech head always fires (zero weights, large
bias), so every row ends at frame ``MIN_FRAMES_BEFORE_EOS`` and then runs its tail frames:
the frame count of a text is known exactly (``expected_frames``), with no test hook in the
engine. The decoder's weights are random, so the audio is noise-like but not silent.
"""

from __future__ import annotations

from pathlib import Path

SAMPLES_PER_FRAME = 1920
"""Codec hop (samples at 24 kHz), as in the released checkpoints: 12.5 frames/s."""
MIN_FRAMES_BEFORE_EOS = 3
FRAMES_AFTER_EOS = 2
FRAMES_AFTER_EOS_SHORT_TEXT = 4
SHORT_TEXT_MAX_WORDS = 4
CODEC_FOLDER = "audio_tokenizer"

_SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "audio_prompt_token": "<|voice|>",
    "audio_latent_token": "<|latent|>",
    "audio_prompt_bos_token": "<|voice_bos|>",
    "audio_bos_token": "<|audio_bos|>",
}
# The layout the processor expects: voice BOS, one voice placeholder per audio item, the text,
# then the first audio position. The released checkpoints ship their own template.
_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- for item in message['content'] -%}{%- if item['type'] == 'audio' -%}<|voice_bos|><|voice|>{%- endif -%}"
    "{%- endfor -%}"
    "{%- for item in message['content'] -%}{%- if item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- endfor -%}<|audio_bos|>"
)


def expected_frames(text: str) -> int:
    """Frames the tiny model generates for ``text`` (after the engine's punctuation clean-up)."""
    tail = FRAMES_AFTER_EOS_SHORT_TEXT if len(text.split()) <= SHORT_TEXT_MAX_WORDS else FRAMES_AFTER_EOS
    return MIN_FRAMES_BEFORE_EOS + 1 + tail


def build_tiny_pocket_tts(path: str | Path) -> Path:
    """Save a tiny random Pocket TTS checkpoint into ``path`` (created) and return it.

    The codec is saved in ``path/audio_tokenizer`` and the processor refers to it there, so the
    folder holds everything the engine loads. Deterministic: same weights on every call.
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import (GenerationConfig, PocketTTSAudioTokenizerConfig, PocketTTSAudioTokenizerModel,
                              PocketTTSConfig, PocketTTSFeatureExtractor, PocketTTSForConditionalGeneration,
                              PocketTTSProcessor, PreTrainedTokenizerFast)
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    codec_config = PocketTTSAudioTokenizerConfig(
        hidden_size=16, num_filters=4, upsample_groups=16, num_hidden_layers=1, intermediate_size=32,
        num_attention_heads=2, num_key_value_heads=2, latent_dim=8)
    assert codec_config.frame_size == SAMPLES_PER_FRAME
    PocketTTSAudioTokenizerModel(codec_config).eval().save_pretrained(path / CODEC_FOLDER)
    # Loaded back so that the processor records the saved folder as the codec's location.
    codec = PocketTTSAudioTokenizerModel.from_pretrained(path / CODEC_FOLDER)

    # Byte-level vocabulary (every text encodes, no merges) plus the padding and placeholder tokens.
    vocab = {symbol: index for index, symbol in enumerate(bytes_to_unicode().values())}
    for token in _SPECIAL_TOKENS.values():
        vocab[token] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(token, special=True) for token in _SPECIAL_TOKENS.values()])
    named = {key: value for key, value in _SPECIAL_TOKENS.items() if key != "pad_token"}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=_SPECIAL_TOKENS["pad_token"],
                                        padding_side="left", extra_special_tokens=named)

    feature_extractor = PocketTTSFeatureExtractor(frame_size=SAMPLES_PER_FRAME, pad_to_multiple_of=SAMPLES_PER_FRAME)
    processor = PocketTTSProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer, audio_tokenizer=codec,
                                   chat_template=_CHAT_TEMPLATE, short_text_max_words=SHORT_TEXT_MAX_WORDS,
                                   frames_after_eos_short_text=FRAMES_AFTER_EOS_SHORT_TEXT,
                                   frames_after_eos=FRAMES_AFTER_EOS)
    processor.save_pretrained(path)

    ids = {key: vocab[token] for key, token in _SPECIAL_TOKENS.items()}
    config = PocketTTSConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        latent_dim=8, pad_token_id=ids["pad_token"], audio_prompt_token_id=ids["audio_prompt_token"],
        audio_latent_token_id=ids["audio_latent_token"], audio_prompt_bos_token_id=ids["audio_prompt_bos_token"],
        audio_bos_token_id=ids["audio_bos_token"],
        flow_head_config={"hidden_size": 32, "num_hidden_layers": 1, "latent_dim": 8, "condition_dim": 32,
                          "frequency_embedding_size": 16})
    model = PocketTTSForConditionalGeneration(config).eval()
    with torch.no_grad():
        # End of speech on every frame: generation stops at MIN_FRAMES_BEFORE_EOS plus the tail.
        model.eos_head.weight.zero_()
        model.eos_head.bias.fill_(10.0)
    generation_config = GenerationConfig(
        do_sample=True, temperature=0.7, num_flow_steps=1, eos_threshold=-4.0,
        min_frames_before_eos=MIN_FRAMES_BEFORE_EOS, pad_token_id=ids["pad_token"])
    # Otherwise the Pocket TTS keys are dropped when the config is loaded back.
    generation_config._from_model_config = False
    model.generation_config = generation_config
    model.save_pretrained(path)
    return path
