"""Spoken-form normalisation: numbers, dates, times, money, units and abbreviations as words.

For engines that read digits and symbols poorly, and so QA can score a transcript against what
was actually said. English, Spanish and German are covered:

* cardinals, decimals, ordinals ("3rd", "3º"), years, currencies: num2words (its number words,
  ordinals, year readings and currency names);
* dates (ISO ``2025-03-14``, ``March 14, 2025``, ``14 March 2025``, ``14 de marzo de 2025``,
  ``14. März 2025``), times (``10:30``), percentages, units after a number and common
  abbreviations: num2words has no dates, times, units or abbreviations, so those use the small
  per-language tables in this module (month names, unit names, abbreviations).

Anything not recognised is left exactly as written. The result is a ``Rewrite`` whose edits
record each expansion (``kind="normalise"``, ``rule`` naming what it was, e.g. ``"year"``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from num2words import CONVERTER_CLASSES, num2words

from castline.script.lexicon import Edit, Rewrite

LANGUAGES = ("en", "es", "de")
MAX_NUMBER = 10**15
"""Numbers this large or larger are left as written (ids, not quantities)."""


@dataclass(frozen=True)
class _Tables:
    thousands: str
    decimal: str
    months: tuple[str, ...]
    percent: str
    units: dict[str, tuple[str, str]]
    abbreviations: dict[str, str]
    year_cues: frozenset[str]
    currency_names: dict[str, str]


_UNITS_EN = {
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"), "l": ("liter", "liters"), "ml": ("milliliter", "milliliters"),
    "mi": ("mile", "miles"), "ft": ("foot", "feet"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "h": ("hour", "hours"), "min": ("minute", "minutes"), "s": ("second", "seconds"),
    "ms": ("millisecond", "milliseconds"), "km/h": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"), "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "GB": ("gigabyte", "gigabytes"), "MB": ("megabyte", "megabytes"), "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"), "dB": ("decibel", "decibels"),
}
_UNITS_ES = {
    "km": ("kilómetro", "kilómetros"), "m": ("metro", "metros"), "cm": ("centímetro", "centímetros"),
    "mm": ("milímetro", "milímetros"), "kg": ("kilogramo", "kilogramos"), "g": ("gramo", "gramos"),
    "mg": ("miligramo", "miligramos"), "l": ("litro", "litros"), "ml": ("mililitro", "mililitros"),
    "h": ("hora", "horas"), "min": ("minuto", "minutos"), "s": ("segundo", "segundos"),
    "ms": ("milisegundo", "milisegundos"), "km/h": ("kilómetro por hora", "kilómetros por hora"),
    "°C": ("grado centígrado", "grados centígrados"), "kWh": ("kilovatio hora", "kilovatios hora"),
    "GB": ("gigabyte", "gigabytes"), "MB": ("megabyte", "megabytes"), "Hz": ("hercio", "hercios"),
    "dB": ("decibelio", "decibelios"),
}
_UNITS_DE = {
    "km": ("Kilometer", "Kilometer"), "m": ("Meter", "Meter"), "cm": ("Zentimeter", "Zentimeter"),
    "mm": ("Millimeter", "Millimeter"), "kg": ("Kilogramm", "Kilogramm"), "g": ("Gramm", "Gramm"),
    "mg": ("Milligramm", "Milligramm"), "l": ("Liter", "Liter"), "ml": ("Milliliter", "Milliliter"),
    "h": ("Stunde", "Stunden"), "Std.": ("Stunde", "Stunden"), "min": ("Minute", "Minuten"),
    "s": ("Sekunde", "Sekunden"), "ms": ("Millisekunde", "Millisekunden"),
    "km/h": ("Kilometer pro Stunde", "Kilometer pro Stunde"), "°C": ("Grad Celsius", "Grad Celsius"),
    "kWh": ("Kilowattstunde", "Kilowattstunden"), "GB": ("Gigabyte", "Gigabyte"), "MB": ("Megabyte", "Megabyte"),
    "Hz": ("Hertz", "Hertz"), "dB": ("Dezibel", "Dezibel"),
}

TABLES: dict[str, _Tables] = {
    "en": _Tables(
        thousands=",", decimal=".",
        months=("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December"),
        percent="percent", units=_UNITS_EN,
        abbreviations={"Dr.": "Doctor", "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Prof.": "Professor",
                       "e.g.": "for example", "i.e.": "that is", "etc.": "et cetera", "vs.": "versus",
                       "approx.": "approximately", "No.": "number", "Jr.": "Junior", "Sr.": "Senior"},
        year_cues=frozenset({"in", "since", "by", "from", "until", "till", "of", "year", "during", "before",
                             "after", "around", "circa", "early", "late", "mid", "summer", "winter",
                             "spring", "autumn", "fall"}),
        currency_names={"$": "USD", "€": "EUR", "£": "GBP", "USD": "USD", "EUR": "EUR", "GBP": "GBP"}),
    "es": _Tables(
        thousands=".", decimal=",",
        months=("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
                "octubre", "noviembre", "diciembre"),
        percent="por ciento", units=_UNITS_ES,
        abbreviations={"Sr.": "señor", "Sra.": "señora", "Srta.": "señorita", "Dr.": "doctor", "Dra.": "doctora",
                       "etc.": "etcétera", "p. ej.": "por ejemplo", "Ud.": "usted", "Uds.": "ustedes",
                       "núm.": "número", "aprox.": "aproximadamente", "EE. UU.": "Estados Unidos"},
        year_cues=frozenset({"en", "desde", "hasta", "de", "año", "del"}),
        currency_names={"$": "USD", "€": "EUR", "£": "GBP", "USD": "USD", "EUR": "EUR", "GBP": "GBP"}),
    "de": _Tables(
        thousands=".", decimal=",",
        months=("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                "November", "Dezember"),
        percent="Prozent", units=_UNITS_DE,
        abbreviations={"Dr.": "Doktor", "z. B.": "zum Beispiel", "z.B.": "zum Beispiel", "usw.": "und so weiter",
                       "bzw.": "beziehungsweise", "ca.": "circa", "d. h.": "das heißt", "d.h.": "das heißt",
                       "Nr.": "Nummer", "u. a.": "unter anderem", "evtl.": "eventuell", "inkl.": "inklusive",
                       "Str.": "Straße", "Prof.": "Professor", "Hr.": "Herr"},
        year_cues=frozenset({"im", "jahr", "jahre", "seit", "bis", "von", "um", "anno", "ab"}),
        currency_names={"$": "USD", "€": "EUR", "£": "GBP", "USD": "USD", "EUR": "EUR", "GBP": "GBP"}),
}


def supported(language: str) -> bool:
    return _primary(language) in TABLES


def normalise(text: str, language: str = "en") -> Rewrite:
    """The spoken form of ``text`` in ``language`` (unchanged for languages not covered)."""
    return Rewrite.build(text, normalise_edits(text, language))


def normalise_edits(text: str, language: str = "en", start: int = 0, end: int | None = None) -> list[Edit]:
    """Edits that spell out ``text[start:end]`` (positions are in ``text``)."""
    lang = _primary(language)
    if lang not in TABLES:
        return []
    pattern = _pattern(lang)
    edits = []
    stop = len(text) if end is None else end
    for match in pattern.finditer(text, start, stop):
        spoken = _speak(match, lang, text)
        if spoken is not None and spoken != match.group(0):
            edits.append(Edit(match.start(), match.end(), spoken[0], spoken[0], spoken[1], kind="normalise"))
    return edits


# -- pattern ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _pattern(lang: str) -> re.Pattern:
    t = TABLES[lang]
    th, dec = re.escape(t.thousands), re.escape(t.decimal)
    number = rf"(?:\d{{1,3}}(?:{th}\d{{3}})+|\d+)(?:{dec}\d+)?"
    lead = r"(?<![\w.,:/-])"
    trail = r"(?![\w]|[.,:]\d)"
    months = "|".join(sorted(t.months, key=len, reverse=True))
    units = "|".join(re.escape(u) for u in sorted(t.units, key=len, reverse=True))
    symbols = "|".join(re.escape(s) for s in t.currency_names)
    abbreviations = "|".join(re.escape(a).replace(r"\ ", r"\s?") for a in sorted(t.abbreviations, key=len,
                                                                                   reverse=True))
    if lang == "en":
        date = (rf"(?P<mdy>(?P<mdy_m>{months})\s+(?P<mdy_d>\d{{1,2}})(?:st|nd|rd|th)?(?:,\s*(?P<mdy_y>\d{{4}}))?)"
                rf"|(?P<dmy>(?P<dmy_d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<dmy_m>{months})(?:,?\s+(?P<dmy_y>\d{{4}}))?)")
        ordinal = r"(?P<ord>\d+)(?:st|nd|rd|th)"
    elif lang == "es":
        date = rf"(?P<dmy>(?P<dmy_d>\d{{1,2}})\s+de\s+(?P<dmy_m>{months})(?:\s+de(?:l)?\s+(?P<dmy_y>\d{{4}}))?)"
        ordinal = r"(?P<ord>\d+)\.?(?P<ord_g>[ºª°])"
    else:
        date = rf"(?P<dmy>(?P<dmy_d>\d{{1,2}})\.\s*(?P<dmy_m>{months})(?:\s+(?P<dmy_y>\d{{4}}))?)"
        ordinal = r"(?!x)x(?P<ord>)"  # German "3." is a sentence end as often as an ordinal: dates only
    parts = [
        rf"(?P<iso>(?P<iso_y>\d{{4}})-(?P<iso_m>0[1-9]|1[0-2])-(?P<iso_d>0[1-9]|[12]\d|3[01]))(?![\w-])",
        rf"(?:{date})(?!\w)",
        r"(?P<time>(?P<time_h>[01]?\d|2[0-3]):(?P<time_m>[0-5]\d))(?:\s?(?P<time_ap>[ap]\.?m\.?)(?!\w))?(?![\w:])",
        rf"(?P<cur>(?P<cur_pre>{symbols})\s?(?P<cur_n>{number})|(?P<cur_n2>{number})\s?(?P<cur_post>{symbols}))"
        rf"(?P<cur_scale>\s+(?:million|billion|thousand|millones|mil|Millionen|Milliarden))?(?![\w])",
        rf"(?P<pct>(?P<pct_n>{number})\s?%)",
        rf"(?P<decade>(?P<decade_n>1[0-9]|20)(?P<decade_t>[0-9]0)'?s)(?!\w)" if lang == "en" else r"(?!x)x(?P<decade>)",
        rf"(?P<unit>(?P<unit_n>{number})\s?(?P<unit_u>{units}))(?![\w/])",
        rf"(?:{ordinal})(?!\w)",
        rf"(?P<num>{number}){trail}",
        rf"(?P<abbr>(?<!\w)(?:{abbreviations}))",
    ]
    return re.compile(lead + "(?:" + "|".join(parts[:-1]) + ")|" + parts[-1])


# -- speaking --------------------------------------------------------------------------------


def _speak(match: re.Match, lang: str, text: str) -> tuple[str, str] | None:
    groups = match.groupdict()
    t = TABLES[lang]
    try:
        if groups.get("iso"):
            return _date(lang, int(groups["iso_d"]), int(groups["iso_m"]), int(groups["iso_y"]), text,
                         match.start()), "date"
        if groups.get("mdy"):
            return _date(lang, int(groups["mdy_d"]), _month(t, groups["mdy_m"]),
                         int(groups["mdy_y"]) if groups["mdy_y"] else None, text, match.start(), us=True), "date"
        if groups.get("dmy"):
            return _date(lang, int(groups["dmy_d"]), _month(t, groups["dmy_m"]),
                         int(groups["dmy_y"]) if groups["dmy_y"] else None, text, match.start()), "date"
        if groups.get("time"):
            return _time(lang, int(groups["time_h"]), int(groups["time_m"]), groups.get("time_ap")), "time"
        if groups.get("cur"):
            symbol = groups["cur_pre"] or groups["cur_post"]
            amount = _parse_number(groups["cur_n"] or groups["cur_n2"], t)
            return _currency(lang, amount, t.currency_names[symbol], (groups.get("cur_scale") or "").strip()), \
                "currency"
        if groups.get("pct"):
            return f"{_cardinal(_parse_number(groups['pct_n'], t), lang)} {t.percent}", "percent"
        if groups.get("unit"):
            value = _parse_number(groups["unit_n"], t)
            one, many = t.units[groups["unit_u"]]
            return f"{_cardinal(value, lang)} {one if value == 1 else many}", "unit"
        if groups.get("ord"):
            return _ordinal(int(groups["ord"]), lang, groups.get("ord_g")), "ordinal"
        if groups.get("decade"):
            year = num2words(int(groups["decade_n"] + groups["decade_t"]), lang="en", to="year")
            return (year[:-1] + "ies" if year.endswith("y") else year + "s"), "year"
        if groups.get("num"):
            value = _parse_number(groups["num"], t)
            raw = groups["num"]
            if len(raw) > 1 and raw[0] == "0" and raw[1].isdigit():
                return None  # "007", zip codes: read digit by digit by the engine
            if _is_year(raw, text, match.start(), t):
                return _year(int(raw), lang), "year"
            return _cardinal(value, lang), "number"
        if groups.get("abbr"):
            if match.group(0) in ("No.", "Nr.", "núm.") and not re.match(r"\s*\d", text[match.end():]):
                return None  # "No." is a number sign only before a number
            return _abbreviation(match.group(0), t, text, match.end()), "abbreviation"
    except (InvalidOperation, OverflowError, NotImplementedError, ValueError, KeyError):
        return None
    return None


def _parse_number(raw: str, t: _Tables) -> Decimal:
    value = Decimal(raw.replace(t.thousands, "").replace(t.decimal, "."))
    if value >= MAX_NUMBER:
        raise OverflowError(raw)
    return value


def _cardinal(value: Decimal | int, lang: str) -> str:
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    # Commas inside an English number would read as pauses.
    words = num2words(value, lang=lang).replace(",", "")
    if lang == "de":
        # num2words 0.5.14 writes "einhunderteinstausend" (101000) and "einhunderteins Millionen":
        # "eins" only ends a German number.
        words = re.sub(r"eins(?=tausend)", "ein", words)
        words = re.sub(r"eins (?=Million|Milliard|Billion)", "eine ", words)
    return words


def _ordinal(value: int, lang: str, gender: str | None = None) -> str:
    if value >= MAX_NUMBER:
        raise OverflowError(value)
    words = num2words(value, lang=lang, to="ordinal").replace(",", "")
    if lang == "es":
        # num2words 0.5.14 spells 40th "quadragésimo"; Spanish writes (and says) "cuadragésimo".
        words = words.replace("quadragésim", "cuadragésim")
    if lang == "es" and gender == "ª" and words.endswith("o"):
        words = " ".join(w[:-1] + "a" if w.endswith("o") else w for w in words.split())
    return words


def _year(year: int, lang: str) -> str:
    return num2words(year, lang=lang, to="year").replace(",", "")


def _is_year(raw: str, text: str, start: int, t: _Tables) -> bool:
    if not (len(raw) == 4 and raw.isdigit() and 1000 <= int(raw) <= 2099):
        return False
    before = re.findall(r"[^\W\d_]+", text[max(0, start - 20):start])
    return bool(before) and before[-1].lower() in t.year_cues


def _month(t: _Tables, name: str) -> int:
    lowered = [m.lower() for m in t.months]
    return lowered.index(name.lower()) + 1


def _date(lang: str, day: int, month: int, year: int | None, text: str, start: int, us: bool = False) -> str:
    t = TABLES[lang]
    if not 1 <= day <= 31:
        raise ValueError(day)
    name = t.months[month - 1]
    spoken_year = f"{_year(year, lang)}" if year is not None else ""
    if lang == "en":
        day_words = num2words(day, lang="en", to="ordinal")
        if us:
            out = f"{name} {day_words}" + (f", {spoken_year}" if year else "")
        else:
            out = f"the {day_words} of {name}" + (f" {spoken_year}" if year else "")
            if re.search(r"\bthe\s*$", text[max(0, start - 5):start], re.IGNORECASE):
                out = out[4:]
        return out
    if lang == "es":
        day_words = "primero" if day == 1 else num2words(day, lang="es")
        return f"{day_words} de {name}" + (f" de {spoken_year}" if year else "")
    day_words = num2words(day, lang="de", to="ordinal")
    # "am/vom/zum 3. März" takes the dative: "am dritten März".
    if re.search(r"\b(?:am|vom|zum|im|beim|bis zum|seit dem)\s*$", text[max(0, start - 12):start], re.IGNORECASE):
        day_words += "n"
    elif not re.search(r"\b(?:der|den|dem)\s*$", text[max(0, start - 6):start], re.IGNORECASE):
        day_words += "r"
    return f"{day_words} {name}" + (f" {spoken_year}" if year else "")


def _time(lang: str, hour: int, minute: int, ampm: str | None) -> str:
    h = num2words(hour, lang=lang)
    if lang == "en":
        if minute == 0:
            out = f"{h} o'clock" if not ampm else h
        elif minute < 10:
            out = f"{h} oh {num2words(minute, lang='en')}"
        else:
            out = f"{h} {num2words(minute, lang='en')}"
        if ampm:
            out += " a m" if ampm[0].lower() == "a" else " p m"
        return out
    if lang == "es":
        h = "una" if hour in (1, 13) and hour == 1 else h
        return f"{h} en punto" if minute == 0 else f"{h} y {num2words(minute, lang='es')}"
    return f"{h} Uhr" if minute == 0 else f"{h} Uhr {num2words(minute, lang='de')}"


def _currency(lang: str, amount: Decimal, code: str, scale: str) -> str:
    converter = CONVERTER_CLASSES[lang]
    forms = converter.CURRENCY_FORMS[code]
    if scale:
        return f"{_cardinal(amount, lang)} {scale} {forms[0][1]}" if lang != "es" else \
            f"{_cardinal(amount, lang)} {scale} de {forms[0][1]}"
    if amount == amount.to_integral_value():
        whole = int(amount)
        return f"{_cardinal(whole, lang)} {converter.pluralize(whole, forms[0])}"
    if amount < 1 and amount * 100 == (amount * 100).to_integral_value():
        cents = int(amount * 100)
        return f"{_cardinal(cents, lang)} {converter.pluralize(cents, forms[1])}"
    # num2words spells both units ("nine dollars, ninety-nine cents"): its own currency reading.
    return num2words(amount, lang=lang, to="currency", currency=code).replace(",", "")


def _abbreviation(found: str, t: _Tables, text: str, end: int) -> str:
    key = next((k for k in t.abbreviations if re.fullmatch(re.escape(k).replace(r"\ ", r"\s?"), found)), None)
    expansion = t.abbreviations[key]
    # A sentence-final "etc." keeps its full stop so the sentence still ends there.
    rest = text[end:]
    if key in _SENTENCE_FINAL and (not rest.strip() or re.match(r"\s+[A-ZÀ-Ý]", rest)):
        expansion += "."
    start = end - len(found)
    if found[:1].isupper() and expansion[:1].islower() and re.search(r"(?:^|[.!?]\s+)$", text[:start]):
        expansion = expansion[:1].upper() + expansion[1:]
    return expansion


_SENTENCE_FINAL = frozenset({"etc.", "usw.", "e.g.", "i.e.", "z. B.", "z.B.", "d. h.", "d.h.", "u. a."})


def _primary(language: str) -> str:
    return language.replace("_", "-").split("-", 1)[0].lower()
