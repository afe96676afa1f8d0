"""How intelligible is the espeak-ng fallback? Whisper base (castline's QA recogniser) hears
sentences spoken by espeak-ng in Spanish and German (and English, next to hibari's English for
scale); prints the word error rate per language after castline's WER normalisation.

    .venv/bin/python bench/espeak_quality.py
"""

from __future__ import annotations

import time

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.dub.cast import espeak_fallback_voice
from castline.engines.espeak import EspeakEngine
from castline.qa.asr import get_transcriber
from castline.qa.wer import score

SENTENCES = {
    "es": [
        "Buenas noches y bienvenidos a un nuevo episodio.",
        "Mañana por la mañana saldremos temprano hacia la costa.",
        "No sé si podré terminar el trabajo antes del viernes.",
        "La ciudad estaba tranquila, pero nadie dormía aquella noche.",
        "¿Has visto las llaves del coche? Las dejé encima de la mesa.",
        "El tren llegó con veinte minutos de retraso.",
        "Mi hermana vive en Madrid desde hace cinco años.",
        "Te prometo que esta vez diré la verdad.",
    ],
    "de": [
        "Guten Abend und willkommen zu einer neuen Folge.",
        "Morgen früh fahren wir zeitig an die Küste.",
        "Ich weiß nicht, ob ich die Arbeit vor Freitag schaffe.",
        "Die Stadt war ruhig, aber in dieser Nacht schlief niemand.",
        "Hast du die Autoschlüssel gesehen? Ich habe sie auf den Tisch gelegt.",
        "Der Zug kam mit zwanzig Minuten Verspätung an.",
        "Meine Schwester wohnt seit fünf Jahren in Berlin.",
        "Ich verspreche dir, dass ich diesmal die Wahrheit sage.",
    ],
    "en": [
        "Good evening and welcome to a new episode.",
        "Tomorrow morning we will leave early for the coast.",
        "I do not know if I can finish the work before Friday.",
        "The city was quiet, but nobody slept that night.",
        "Have you seen the car keys? I left them on the table.",
        "The train arrived twenty minutes late.",
        "My sister has lived in London for five years.",
        "I promise you that this time I will tell the truth.",
    ],
}


def corpus_wer(pairs: list[tuple[str, str]], language: str) -> float:
    errors = words = 0
    for reference, heard in pairs:
        result = score(reference, heard, language)
        errors += result.substitutions + result.deletions + result.insertions
        words += result.reference_words
    return errors / words


def main() -> None:
    transcriber = get_transcriber()
    espeak = EspeakEngine()
    rows = []
    for language, sentences in SENTENCES.items():
        voice = espeak_fallback_voice(language)
        pairs = []
        started = time.perf_counter()
        for text in sentences:
            [audio] = espeak.synthesize([text], voice, [0])
            heard = transcriber.transcribe(resample(audio, 22_050, 16_000), 16_000, language=language).text
            pairs.append((text, heard))
        rows.append((f"espeak-ng {language}", corpus_wer(pairs, language), time.perf_counter() - started, pairs))
    from castline.engines.hibari import HibariEngine
    from castline.voices.profiles import default_voices_dir, load_voice_library

    heart = load_voice_library(default_voices_dir()).get("heart")
    hibari = HibariEngine()
    pairs = []
    for text in SENTENCES["en"]:
        [audio] = hibari.synthesize([text], heart, [0])
        heard = transcriber.transcribe(resample(audio, 24_000, PROJECT_SAMPLE_RATE), PROJECT_SAMPLE_RATE,
                                       language="en").text
        pairs.append((text, heard))
    rows.append(("hibari en (heart)", corpus_wer(pairs, "en"), 0.0, pairs))
    print(f"{'voice':<20} {'sentences':>9} {'WER':>6}")
    for name, wer, _, pairs in rows:
        print(f"{name:<20} {len(pairs):>9} {wer:6.3f}")
    print()
    for name, _, _, pairs in rows:
        worst = max(pairs, key=lambda pair: score(pair[0], pair[1], name.split()[-1][:2] if "espeak" in name
                                                  else "en").wer)
        print(f"{name}: worst heard {worst[1]!r} for {worst[0]!r}")


if __name__ == "__main__":
    main()
