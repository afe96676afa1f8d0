"""A tiny random VibeVoice checkpoint (≈0.8M parameters) for offline tests, saved like a real one.

The real classes, small: a 2-layer Qwen2, acoustic and semantic tokenizers that keep the 3200-sample
hop (7.5 frames/s at 24 kHz) with 2 filters and one block per stage, a 1-layer diffusion head, and a
byte-level ``Qwen2Tokenizer`` built in memory with the processor's special tokens (left padding).
A random model never chooses the audio token by itself: ``ForceAudioFrames`` makes it (tests only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

SPECIAL_TOKENS = ("<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>")
END_ID, AUDIO_BOS_ID, AUDIO_EOS_ID, AUDIO_ID = 256, 257, 258, 259
VOCAB_SIZE = 260

# The same prompt layout as the released checkpoints' template: system line, one voice prompt per
# speaker (in order of first audio block), the script as "Speaker N: text" lines, then the speech cue.
CHAT_TEMPLATE = (
    "{{- ' Transform the text provided by various speakers into speech output, utilizing the distinct voice of "
    "each respective speaker.\\n' -}}"
    "{%- set ns = namespace(voiced=[]) -%}"
    "{%- for message in messages -%}"
    "{%- if message['content'] | selectattr('type', 'equalto', 'audio') | list | length > 0 "
    "and message['role'] not in ns.voiced -%}{%- set ns.voiced = ns.voiced + [message['role']] -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if ns.voiced -%}{{ ' Voice input:\\n' }}{%- for speaker in ns.voiced -%}"
    "{{ ' Speaker ' ~ speaker ~ ':<|vision_start|><|vision_pad|><|vision_end|>\\n' }}{%- endfor -%}{%- endif -%}"
    "{{ ' Text input:\\n' }}"
    "{%- for message in messages -%}{%- for item in message['content'] | selectattr('type', 'equalto', 'text') -%}"
    "{{ ' Speaker ' ~ message['role'] ~ ': ' ~ item['text'] ~ '\\n' }}{%- endfor -%}{%- endfor -%}"
    "{{ ' Speech output:\\n<|vision_start|>' }}"
)


def build_tiny_vibevoice(path: str | Path, seed: int = 0, audio_init_range: float = 0.12,
                         speak_frames: int | None = None) -> Path:
    """Build, save (``save_pretrained``) and return a tiny random VibeVoice model + processor in ``path``.

    Deterministic for a given ``seed``; ``audio_init_range`` scales the acoustic decoder's random weights
    so its output is audible-sized rather than ~1e-10. ``speak_frames``: the saved generation config
    biases the model to emit exactly that many audio frames per prompt and then end, so it "speaks" with
    no test hook (for end-to-end runs through the CLI); the window's budget must allow frames + 2 tokens.
    """
    import torch
    from transformers import (VibeVoiceAcousticTokenizerFeatureExtractor, VibeVoiceConfig,
                              VibeVoiceForConditionalGeneration, VibeVoiceProcessor)

    path = Path(path)
    tokenizer_settings = dict(num_filters=2, downsampling_ratios=[2, 2, 4, 5, 5, 8], depths=[1] * 7, kernel_size=3,
                              ffn_expansion=2, hidden_size=8, initializer_range=audio_init_range)
    config = VibeVoiceConfig(
        text_config=dict(model_type="qwen2", vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=8192),
        audio_config=dict(model_type="vibevoice_acoustic_tokenizer", **tokenizer_settings),
        semantic_model_config=dict(model_type="vibevoice_acoustic_tokenizer_encoder", **tokenizer_settings),
        diffusion_head_config=dict(num_hidden_layers=1, intermediate_size=64, frequency_embedding_size=32),
        pad_token_id=END_ID, eos_token_id=END_ID, audio_bos_token_id=AUDIO_BOS_ID, audio_eos_token_id=AUDIO_EOS_ID,
        audio_token_id=AUDIO_ID)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VibeVoiceForConditionalGeneration(config).eval()
    generation = model.generation_config
    generation.noise_scheduler_class = "DPMSolverMultistepScheduler"
    generation.noise_scheduler_config = {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}
    generation._from_model_config = False
    if speak_frames is not None:
        # Sequence biases (a standard generation-config field) act on the generated tail: prefer audio,
        # end audio after exactly speak_frames frames, then end the sequence.
        generation.sequence_bias = [[[AUDIO_ID], 50.0], [[AUDIO_ID] * speak_frames + [AUDIO_EOS_ID], 200.0],
                                    [[AUDIO_EOS_ID, END_ID], 400.0]]
    model.save_pretrained(path)
    processor = VibeVoiceProcessor(feature_extractor=VibeVoiceAcousticTokenizerFeatureExtractor(),
                                   tokenizer=_tokenizer(), chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(path)
    return path


def _tokenizer():
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = bytes_to_unicode()
    vocab = {symbols[byte]: byte for byte in range(256)}
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], padding_side="left")
    tokenizer.add_tokens([AddedToken(token, special=True) for token in SPECIAL_TOKENS[1:]])
    return tokenizer


def _logits_processor_base():
    from transformers import LogitsProcessor

    return LogitsProcessor


class ForceAudioFrames(_logits_processor_base()):
    """Test-only logits processor: row ``i`` emits the audio token ``frames[i]`` times, then the audio-end
    and end tokens (what a trained model does); ``frames`` may be one int for every row.

    Use a fresh instance per ``generate`` call: it remembers the prompt length from its first call.
    """

    def __init__(self, frames: int | Sequence[int], audio_id: int = AUDIO_ID, audio_eos_id: int = AUDIO_EOS_ID,
                 end_id: int = END_ID) -> None:
        self.frames = frames
        self.audio_id, self.audio_eos_id, self.end_id = audio_id, audio_eos_id, end_id
        self._prompt_length: int | None = None

    def __call__(self, input_ids, scores):
        import torch

        if self._prompt_length is None:
            self._prompt_length = input_ids.shape[1]
        step = input_ids.shape[1] - self._prompt_length
        frames = [self.frames] * input_ids.shape[0] if isinstance(self.frames, int) else list(self.frames)
        forced = torch.full_like(scores, float("-inf"))
        for row, count in enumerate(frames):
            token = self.audio_id if step < count else self.audio_eos_id if step == count else self.end_id
            forced[row, token] = 0.0
        return forced
