"""Text normalisation for word error rate: the script and the transcript go through the same function.

English convention: every number ends as ONE digit token, whether it was written in digits or
spelled out, so a misheard number costs one word error:

    "twelve thousand", "12,000"               → "12000"
    "three point five", "3.5"                 → "3.5"
    "third", "3rd"                            → "3rd"
    "twenty twenty five", "two thousand and twenty-five", "2025" → "2025"
    "the nineteen nineties", "the 1990s", "'90s" → "the 1990s", "90s"
    "forty percent", "forty per cent", "40%"  → "40 percent"
    "nine dollars and ninety-nine cents", "$9.99" → "9 dollars 99 cents"
    "ten thirty", "10:30"                     → "10 30";  "ten oh five", "10:05" → "10 oh 5"

Spoken years are read as a pair of two-digit groups only when the first group is 13–20
("nineteen eighty four", "twenty twenty five"): "eleven thirty" is far more often a time than
the year 1130. Abbreviations expand to one spoken form (dr → doctor, mr → mister, mrs → missus,
vs → versus, etc → et cetera, e.g. → for example, i.e. → that is, ok → okay); "st", "saint" and
"street" all become "st" (the written form cannot tell them apart). Hyphens split words
("well-known" → "well known"); apostrophes survive inside words ("don't", "o'brien").

Some differences only show when the two sides are compared, so ``reconcile`` takes both
normalised texts: a compound written closed on one side and open or hyphenated on the other
("nonlinear" / "non-linear", "everyday" / "every day", "cannot" / "can not") becomes the closed
word on both, and contractions are expanded on both sides ("don't" / "do not", "it's" / "it
is"; an ambiguous "'d" or "'s" takes whichever of would/had or is/has the other side has).

Spanish and German: numbers, dates, money, units and abbreviations are first spelled out with
``castline.script.normalise`` (num2words), then as other languages. Other languages: lowercase,
punctuation and quotes removed, whitespace collapsed; numbers and abbreviations are left as written.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from castline.script.normalise import normalise as spoken_normalise
from castline.script.normalise import supported as spoken_form_supported

_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9}
_TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_ORDINAL_UNITS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
                  "eighth": 8, "ninth": 9}
_ORDINAL_TEENS = {"tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
                  "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19}
_ORDINAL_TENS = {word[:-1] + "ieth": value for word, value in _TENS.items()}
_ORDINAL_SCALES = {word + "th": value for word, value in _SCALES.items()}
_PLURAL_TENS = {word[:-1] + "ies": value for word, value in _TENS.items()}
_PLURAL_SCALES = {word + "s": value for word, value in _SCALES.items()}

# Kinds of words inside one spelled number.
_UNIT, _TEEN, _TEN_WORD, _HUNDRED, _SCALE = "unit", "teen", "tens", "hundred", "scale"


def _classify(word: str) -> tuple[str, int, str] | None:
    """(kind, value, form) of a number word; form is "", "ordinal" or "plural"."""
    return _NUMBER_WORDS.get(word)


_NUMBER_WORDS: dict[str, tuple[str, int, str]] = {}
for _table, _kind, _form in ((_UNITS, _UNIT, ""), (_TEENS, _TEEN, ""), (_TENS, _TEN_WORD, ""),
                             (_SCALES, _SCALE, ""), (_ORDINAL_UNITS, _UNIT, "ordinal"),
                             (_ORDINAL_TEENS, _TEEN, "ordinal"), (_ORDINAL_TENS, _TEN_WORD, "ordinal"),
                             (_ORDINAL_SCALES, _SCALE, "ordinal"), (_PLURAL_TENS, _TEN_WORD, "plural"),
                             (_PLURAL_SCALES, _SCALE, "plural"),
                             ({"hundred": 100}, _HUNDRED, ""), ({"hundredth": 100}, _HUNDRED, "ordinal"),
                             ({"hundreds": 100}, _HUNDRED, "plural")):
    for _word, _value in _table.items():
        _NUMBER_WORDS[_word] = (_kind, _value, _form)
_DECIMAL_DIGITS = {**_UNITS, "oh": 0}


_ABBREVIATIONS = {
    "dr": "doctor", "mr": "mister", "mrs": "missus", "ms": "ms", "miz": "ms", "st": "st", "saint": "st",
    "street": "st", "vs": "versus", "etc": "et cetera", "etcetera": "et cetera", "eg": "for example",
    "ie": "that is", "ok": "okay", "okey": "okay", "prof": "professor", "jr": "junior", "sr": "senior",
    "mt": "mount", "approx": "approximately", "dept": "department", "govt": "government", "ave": "avenue",
    "oclock": "", "o'clock": "",
}
# British spellings → American: Whisper writes American spelling whatever the accent.
_OUR_STEMS = ("arbour", "ardour", "armour", "behaviour", "candour", "clamour", "colour", "demeanour",
              "endeavour", "favour", "flavour", "harbour", "honour", "humour", "labour", "neighbour",
              "odour", "parlour", "rancour", "rigour", "rumour", "saviour", "savour", "splendour",
              "tumour", "valour", "vapour", "vigour")
_ISE_STEMS = ("apologis", "authoris", "capitalis", "categoris", "centralis", "characteris", "civilis",
              "criticis", "customis", "emphasis", "equalis", "familiaris", "finalis", "globalis",
              "harmonis", "hospitalis", "idealis", "legalis", "localis", "maximis", "memoris", "minimis",
              "mobilis", "modernis", "normalis", "optimis", "organis", "personalis", "polaris", "prioritis",
              "publicis", "realis", "recognis", "socialis", "specialis", "standardis", "summaris",
              "symbolis", "sympathis", "synchronis", "utilis", "visualis")
_ISE_ENDINGS = ("e", "es", "ed", "ing", "er", "ers", "ation", "ations")
_OUR_ENDINGS = ("", "s", "ed", "ing", "ite", "ites", "able", "ful", "er", "ers", "ly", "hood", "less")
_BRITISH = {
    "centre": "center", "centres": "centers", "centred": "centered", "theatre": "theater",
    "theatres": "theaters", "metre": "meter", "metres": "meters", "kilometre": "kilometer",
    "kilometres": "kilometers", "centimetre": "centimeter", "centimetres": "centimeters",
    "millimetre": "millimeter", "millimetres": "millimeters", "litre": "liter", "litres": "liters",
    "fibre": "fiber", "fibres": "fibers", "calibre": "caliber", "sombre": "somber", "spectre": "specter",
    "programme": "program", "programmes": "programs", "catalogue": "catalog", "catalogues": "catalogs",
    "analyse": "analyze", "analysed": "analyzed", "analyses": "analyzes", "analysing": "analyzing",
    "paralyse": "paralyze", "paralysed": "paralyzed", "travelled": "traveled", "travelling": "traveling",
    "traveller": "traveler", "travellers": "travelers", "cancelled": "canceled", "cancelling": "canceling",
    "labelled": "labeled", "labelling": "labeling", "modelled": "modeled", "modelling": "modeling",
    "levelled": "leveled", "fuelled": "fueled", "jewellery": "jewelry", "grey": "gray", "greys": "grays",
    "aluminium": "aluminum", "tyre": "tire", "tyres": "tires", "cheque": "check", "cheques": "checks",
    "defence": "defense", "offence": "offense", "licence": "license", "practise": "practice",
    "practised": "practiced", "practising": "practicing", "mould": "mold", "plough": "plow",
    "sceptical": "skeptical", "sceptic": "skeptic", "manoeuvre": "maneuver", "manoeuvres": "maneuvers",
    "enquiry": "inquiry", "enquiries": "inquiries", "ageing": "aging", "judgement": "judgment",
    "pyjamas": "pajamas", "storey": "story", "storeys": "stories", "draught": "draft", "kerb": "curb",
    "whisky": "whiskey", "yoghurt": "yogurt", "doughnut": "donut", "mum": "mom", "mums": "moms",
    # variants both spellings of which are common on either side of the Atlantic
    "towards": "toward", "afterwards": "afterward", "backwards": "backward", "forwards": "forward",
    "upwards": "upward", "downwards": "downward", "amongst": "among", "whilst": "while",
    "learnt": "learned", "spelt": "spelled", "dreamt": "dreamed", "burnt": "burned", "leapt": "leaped",
    "spoilt": "spoiled", "smelt": "smelled", "focussed": "focused", "focussing": "focusing",
    "benefitted": "benefited", "benefitting": "benefiting", "dialogue": "dialog", "dialogues": "dialogs",
    "analogue": "analog", "acknowledgement": "acknowledgment", "gaol": "jail", "artefact": "artifact",
    "artefacts": "artifacts", "disc": "disk", "discs": "disks", "cosy": "cozy", "axe": "ax",
    "moustache": "mustache", "sulphur": "sulfur", "oestrogen": "estrogen", "paediatric": "pediatric",
    "encyclopaedia": "encyclopedia", "mediaeval": "medieval", "alright": "all right",
}


def _american(word: str) -> str:
    """The American spelling of a British-spelled word (unchanged when not listed)."""
    if word in _BRITISH:
        return _BRITISH[word]
    for stem in _OUR_STEMS:
        if word.startswith(stem) and word[len(stem):] in _OUR_ENDINGS:
            return stem[:-2] + "r" + word[len(stem):]
    for stem in _ISE_STEMS:
        if word.startswith(stem) and word[len(stem):] in _ISE_ENDINGS:
            return stem[:-1] + "z" + word[len(stem):]
    return word


_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence")}
_CURRENCY_WORDS = {"dollar", "dollars", "euro", "euros", "pound", "pounds"}
_SUBUNIT_WORDS = {"cent", "cents", "penny", "pence"}

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‛": "'", "′": "'", "`": "'", "´": "'",
                         "“": '"', "”": '"', "„": '"', "″": '"', "«": '"', "»": '"',
                         "‐": "-", "‑": "-", "‒": " - ", "–": " - ", "—": " - ", "―": " - ", "−": "-",
                         "…": " ", "\u00a0": " "})
_DOTTED_ACRONYM = re.compile(r"\b[a-z](?:\.[a-z])+\b\.?")
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_CURRENCY = re.compile(rf"([$€£])\s?({_NUMBER})(?:\s+(thousand|million|billion|trillion)\b)?")
_PERCENT = re.compile(rf"({_NUMBER})\s?%")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b(?!:)")
_GROUPED = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_DIGIT_PLURAL = re.compile(r"(\d+0)'s\b")
_DECIMAL_TOKEN = re.compile(r"^\d+\.\d+$")
_INT_TOKEN = re.compile(r"^\d+$")
_ORDINAL_TOKEN = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
_PLURAL_TOKEN = re.compile(r"^(\d*0)s$")


def normalise_for_wer(text: str, language: str = "en") -> str:
    """Lowercase words separated by single spaces, punctuation gone, numbers as digit tokens
    (English; see the module docstring for the rules). Idempotent."""
    if not language.lower().startswith("en") and spoken_form_supported(language):
        # Spanish, German: digits, money and units become words on both sides (num2words), so
        # "42" heard for a script's "cuarenta y dos" is no error.
        text = spoken_normalise(unicodedata.normalize("NFKC", text), language).spoken
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    if not language.lower().startswith("en"):
        words = _words(text)
        if spoken_form_supported(language):
            # Once more without punctuation, so the result is a fixed point (idempotent).
            words = _words(spoken_normalise(" ".join(words), language).spoken.lower())
        return " ".join(words)
    text = "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))
    text = _DOTTED_ACRONYM.sub(lambda match: match.group(0).replace(".", ""), text)
    text = _CURRENCY.sub(_spell_currency, text)
    text = _PERCENT.sub(lambda match: f" {match.group(1)} percent ", text)
    text = _TIME.sub(_spell_time, text)
    text = _GROUPED.sub(lambda match: match.group(0).replace(",", ""), text)
    text = _DIGIT_PLURAL.sub(r"\1s", text)
    text = text.replace("%", " percent ").replace("&", " and ")
    words: list[str] = []
    for word in _words(text):
        expanded = _ABBREVIATIONS.get(word, word)
        words.extend(_american(piece) for piece in expanded.split())
    words = _join_per_cent(words)
    words = _canonical_numbers(words)
    words = _drop_currency_and(words)
    return " ".join(words)


def _words(text: str) -> list[str]:
    """Split on anything but letters, digits, apostrophes and decimal points (digit.digit)."""
    text = re.sub(r"(?<=\d)\.(?=\d)", "\x00", text)
    text = re.sub(r"[^\w'\x00]+|_", " ", text)
    words = []
    for word in text.split():
        pieces = word.split("\x00")
        if len(pieces) == 2 and pieces[0].isdigit() and pieces[1].isdigit():
            pieces = [".".join(pieces)]
        for piece in pieces:
            piece = piece.strip("'")
            if piece:
                words.append(piece)
    return words


def _spell_currency(match: re.Match) -> str:
    symbol, amount, scale = match.group(1), match.group(2).replace(",", ""), match.group(3)
    one, many, sub_one, sub_many = _CURRENCIES[symbol]
    if scale:
        return f" {amount} {scale} {many} "
    whole, _, fraction = amount.partition(".")
    if fraction and len(fraction) > 2:
        return f" {amount} {many} "
    major = int(whole)
    minor = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if major or not minor:
        parts.append(f"{major} {one if major == 1 else many}")
    if minor:
        parts.append(f"{minor} {sub_one if minor == 1 else sub_many}")
    return " " + " ".join(parts) + " "


def _spell_time(match: re.Match) -> str:
    hour, minute = match.group(1), match.group(2)
    if minute == "00":
        return f" {int(hour)} "
    if minute.startswith("0"):
        return f" {int(hour)} oh {minute[1]} "
    return f" {int(hour)} {minute} "


def _join_per_cent(words: list[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        if word == "cent" and out and out[-1] == "per":
            out[-1] = "percent"
        else:
            out.append(word)
    return out


def _drop_currency_and(words: list[str]) -> list[str]:
    """"9 dollars and 99 cents" → "9 dollars 99 cents" (Whisper writes "$9.99")."""
    out = []
    for index, word in enumerate(words):
        if (word == "and" and 0 < index < len(words) - 2 and words[index - 1] in _CURRENCY_WORDS
                and _INT_TOKEN.match(words[index + 1]) and words[index + 2] in _SUBUNIT_WORDS):
            continue
        out.append(word)
    return out


def _format_decimal(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _ordinal_suffix(value: int) -> str:
    if value % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")


def _canonical_numbers(words: list[str]) -> list[str]:
    out: list[str] = []
    index = 0
    while index < len(words):
        parsed = _parse_digits(words, index) or _parse_spelled(words, index)
        if parsed is None:
            out.append(words[index])
            index += 1
        else:
            index, token = parsed
            out.append(token)
    return out


def _scale_multiplier(words: list[str], index: int) -> tuple[int, int]:
    """Product of the plain scale words ("hundred", "thousand", …) from ``index``, and the index after them."""
    multiplier = 1
    while index < len(words) and (words[index] == "hundred" or words[index] in _SCALES):
        multiplier *= 100 if words[index] == "hundred" else _SCALES[words[index]]
        index += 1
    return multiplier, index


def _parse_digits(words: list[str], index: int) -> tuple[int, str] | None:
    word = words[index]
    if match := _ORDINAL_TOKEN.match(word):
        value = int(match.group(1))
        return index + 1, f"{value}{_ordinal_suffix(value)}"
    if match := _PLURAL_TOKEN.match(word):
        return index + 1, f"{int(match.group(1))}s"
    if _INT_TOKEN.match(word) or _DECIMAL_TOKEN.match(word):
        multiplier, end = _scale_multiplier(words, index + 1)
        if multiplier == 1:
            return index + 1, word
        return end, _format_decimal(Decimal(word) * multiplier)
    return None


def _parse_spelled(words: list[str], start: int) -> tuple[int, str] | None:
    """The longest spelled number at ``start`` as (index after it, canonical digit token), or None."""
    index = start
    total = 0        # finished scale groups ("two million three thousand" → 2,003,000)
    current = 0      # the group under construction, < 1000 unless "nineteen hundred"-style
    last_scale = None
    has_hundred = False
    sub_kind = None  # what the sub-hundred part holds: None, "unit", "teen", "tens", "tens+unit"
    consumed = False
    form = ""
    year_first = None

    def peek(offset: int = 0):
        position = index + offset
        return _classify(words[position]) if position < len(words) else None

    if words[index] == "a" and (nxt := peek(1)) and nxt[0] in (_HUNDRED, _SCALE) and nxt[2] != "plural":
        index += 1
    while index < len(words):
        info = _classify(words[index])
        word = words[index]
        if info is None:
            if (word == "and" and consumed and (has_hundred or last_scale is not None) and sub_kind is None
                    and (nxt := peek(1)) and nxt[0] in (_UNIT, _TEEN, _TEN_WORD) and words[index + 1] != "zero"):
                index += 1
                continue
            break
        kind, value, word_form = info
        if word == "zero":
            if not consumed:
                consumed = True
                index += 1
            break
        if kind == _UNIT and sub_kind in (None, "tens"):
            current += value
            sub_kind = "unit" if sub_kind is None else "tens+unit"
        elif kind in (_TEEN, _TEN_WORD) and sub_kind is None:
            current += value
            sub_kind = "teen" if kind == _TEEN else "tens"
        elif kind in (_TEEN, _TEN_WORD):
            # A two-digit group after a complete 13–20 → a spoken year ("nineteen eighty four").
            if (consumed and not has_hundred and last_scale is None and total == 0
                    and sub_kind in ("teen", "tens") and 13 <= current <= 20):
                year_first = current
            break
        elif kind == _HUNDRED:
            if word_form == "plural" and not consumed:
                break
            if current == 0 and not has_hundred and sub_kind is None:
                current = 100
            elif 1 <= current <= 99 and not has_hundred:
                current *= 100
            else:
                break
            has_hundred = True
            sub_kind = None
        elif kind == _SCALE:
            if word_form == "plural" and not consumed:
                break
            if last_scale is not None and value >= last_scale:
                break
            total += max(current, 1) * value
            current = 0
            last_scale = value
            has_hundred = False
            sub_kind = None
        else:
            break
        consumed = True
        index += 1
        if word_form:
            form = word_form
            break
    if not consumed:
        return None
    if year_first is None and not form and index < len(words) and words[index] == "oh":
        if sub_kind in ("teen", "tens") and 13 <= current <= 20 and not has_hundred and last_scale is None:
            year_first = current
    if year_first is not None:
        second = _two_digit_group(words, index)
        if second is not None:
            index, value, form = second
            return index, _format_number(year_first * 100 + value, form)
    value = total + current
    if not form and index + 1 < len(words) and words[index] == "point":
        digits = []
        position = index + 1
        while position < len(words) and words[position] in _DECIMAL_DIGITS:
            digits.append(str(_DECIMAL_DIGITS[words[position]]))
            position += 1
        if digits:
            decimal = Decimal(f"{value}.{''.join(digits)}")
            multiplier, end = _scale_multiplier(words, position)
            if multiplier == 1:
                return position, f"{value}.{''.join(digits)}"
            return end, _format_decimal(decimal * multiplier)
    return index, _format_number(value, form)


def _two_digit_group(words: list[str], index: int) -> tuple[int, int, str] | None:
    """A year's second half at ``index``: "eighty four", "twenty", "twelfth", "nineties", "oh five"."""
    if index >= len(words):
        return None
    if words[index] == "oh":
        if index + 1 < len(words) and (info := _classify(words[index + 1])) and info[0] == _UNIT and info[1] > 0:
            return index + 2, info[1], info[2]
        return None
    info = _classify(words[index])
    if info is None or info[0] not in (_TEEN, _TEN_WORD):
        return None
    kind, value, form = info
    if kind == _TEEN or form:
        return index + 1, value, form
    if index + 1 < len(words) and (unit := _classify(words[index + 1])) and unit[0] == _UNIT and unit[1] > 0 \
            and unit[2] != "plural":
        return index + 2, value + unit[1], unit[2]
    return index + 1, value, ""


def _format_number(value: int, form: str) -> str:
    if form == "ordinal":
        return f"{value}{_ordinal_suffix(value)}"
    if form == "plural":
        return f"{value}s"
    return str(value)


# --- both sides at once: compounds and contractions ------------------------------------------------

_NOT_CONTRACTIONS = {"can't": ["can", "not"], "won't": ["will", "not"], "shan't": ["shall", "not"],
                     "ain't": ["is", "not"]}
_SUFFIXES = {"n't": (("not",),), "'re": (("are",),), "'ve": (("have",),), "'m": (("am",),),
             "'ll": (("will",),), "'d": (("would",), ("had",)), "'s": (("is",), ("has",))}
_S_IS = {"it", "he", "she", "that", "what", "there", "here", "who", "where", "how", "when", "why", "this",
         "everything", "nothing", "something", "everyone", "someone", "nobody"}


def reconcile(reference: str, hypothesis: str) -> tuple[str, str]:
    """Both normalised texts (``normalise_for_wer``) with compound words and contractions made
    comparable (see the module docstring). Applying it again changes nothing."""
    ref, hyp = reference.split(), hypothesis.split()
    ref, hyp = _expand_contractions(ref, hyp), _expand_contractions(hyp, ref)
    ref, hyp = _close_compounds(ref, hyp), _close_compounds(hyp, ref)
    return " ".join(ref), " ".join(hyp)


def _expand_contractions(words: list[str], other: list[str]) -> list[str]:
    # What the other side says after each stem, in order: "i had … i would" lets the first "i'd"
    # be "i had" and the second "i would".
    said_after: dict[str, list[str]] = {}
    for first, second in zip(other, other[1:]):
        said_after.setdefault(first, []).append(second)
    out: list[str] = []
    for word in words:
        if word in _NOT_CONTRACTIONS:
            out.extend(_NOT_CONTRACTIONS[word])
            continue
        if word == "let's":
            out.extend(["let", "us"])
            continue
        for suffix, choices in _SUFFIXES.items():
            stem = word[:-len(suffix)]
            if not word.endswith(suffix) or not stem or (suffix == "'s" and stem not in _S_IS):
                continue
            # "n't": "don't" → "do not", "isn't" → "is not"
            heard = [after for after in said_after.get(stem, []) if any(after == c[0] for c in choices)]
            expansion = next((c for c in choices if heard and c[0] == heard[0]), choices[0])
            if heard:
                said_after[stem].remove(heard[0])
            out.extend([stem, *expansion])
            break
        else:
            out.append(word)
    return out


def _close_compounds(words: list[str], other: list[str]) -> list[str]:
    """Join ``a b`` (and ``a b c``) into ``abc`` where the other side has ``abc`` as one word but
    never the parts in a row: one word heard or written two ways."""
    closed = set(other)
    if not closed:
        return words
    other_text = f" {' '.join(other)} "
    out: list[str] = []
    index = 0
    while index < len(words):
        for span in (3, 2):
            parts = words[index:index + span]
            joined = "".join(parts)
            if (len(parts) == span and joined in closed and joined not in words
                    and f" {' '.join(parts)} " not in other_text):
                out.append(joined)
                index += span
                break
        else:
            out.append(words[index])
            index += 1
    return out
