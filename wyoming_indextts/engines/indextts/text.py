"""IndexTTS2 text frontend without torch: normalise, tokenize, segment.

The official frontend (`indextts/utils/front.py` in indextts2-inference 2.1.1) is
nemo_text_processing (pynini FSTs) for numbers, dates and units, then a punctuation map,
then `tokenize_by_CJK_char` (CJK characters split apart, everything upper-cased) and a
sentencepiece BPE model, then `split_segments` to cut long texts into GPT-sized pieces.

What is the same as the official code, exactly:
- the zh/en decision (`use_chinese`: any CJK ideograph, or no Latin letter, or the whole text
  is an e-mail address, or a pinyin syllable with a tone digit such as ``xuan4`` -> Chinese);
- the English contraction rewrite (``it's`` -> ``it is``), the glossary semantics, the pinyin
  protection (``jqx`` + ``u`` syllables become ``JV``/``QVE``... as in `correct_pinyin`);
- the punctuation maps `char_rep_map` / `zh_char_rep_map`, applied last, in one regex pass
  whose alternatives keep the official order (so ``，，，`` becomes ``,,,`` exactly as there);
- tokenization, including the official quirk that a text of one non-blank character is
  encoded raw (not normalised, not upper-cased);
- `split_segments`, including its quirk that a quote token right after a sentence end closes
  the segment and also opens the next one.

The normaliser follows nemo's output conventions (zh: ``25°C`` -> ``二十五摄氏度``, ``6:30`` ->
``六点三十分``, ``2024年`` -> ``二零二四年``, ``50%`` -> ``百分之五十``, ``2000`` -> ``两千``;
en: ``12°C`` -> ``twelve degrees Celsius``, ``3:15 p.m.`` -> ``three fifteen PM``, ``1999`` ->
``nineteen ninety nine``, numbers without "and" or hyphens). Where we deliberately differ,
because nemo's reading is wrong for a voice assistant:
- zh ``2:00`` is ``两点`` (nemo has no ``00`` minute and falls apart into ``二,零零``); am/pm
  become ``上午``/``下午`` in front (nemo leaves the Latin suffix behind the time).
- zh ``10年`` is ``十年``: only four-digit years are read digit by digit (nemo reads any
  2+ digits before 年 as a year, so a ten-year duration became ``一零年``).
- zh phone-like strings (``138-1234-5678``, 11-digit mobiles, digits after 电话/号码...,
  runs of 13+ digits) and any number with a leading 0 (``0571``, ``007``) are read digit by
  digit; nemo reads them as one huge cardinal or splits them arbitrarily.
- ``3-5`` between digits is a range (``三到五`` / ``three to five``); nemo zh read ``负五``.
- zh ``2`` right before a measure word is ``两`` (``两个``, ``两小时``), nemo said ``二个``.
- en minutes ``6:05`` read ``six oh five`` (nemo writes the letter ``o``).
- a score or ratio ``3:2`` is ``三比二`` / ``three to two`` (nemo: ``三,二``).
- digits of any script (fullwidth ``１２``, Arabic-Indic ...) are read like ASCII digits.
- nemo's tech-term and name placeholders are not needed: a ``-`` is read as minus only when
  no letter or digit stands before it, so ``GPT-5`` is ``GPT-five`` without protection.
- emoji and other pictographs are dropped (the BPE has no pieces for them; they would become
  ``<unk>`` tokens the GPT never saw in training).
`TextFrontend.tokenize`/`encode` refuse text with nothing speakable (NoSpeakableTextError)
where the official code would feed punctuation-only tokens to the GPT.
Things nemo does that we skip: Roman numerals, serial numbers, addresses, the long
whitelists of abbreviations (we keep a handful: Mr., Dr., vs., etc. ...).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sentencepiece import SentencePieceProcessor

log = logging.getLogger(__name__)

Glossary = Mapping[str, str | Mapping[str, str]]


class NoSpeakableTextError(ValueError):
    """The text has nothing a voice could say (only punctuation, symbols, emoji or spaces)."""


# --------------------------------------------------------------------------------------
# Tables and patterns copied from the official front.py / common.py (keep them verbatim:
# the order of the punctuation map decides which alternative the regex takes first).
# --------------------------------------------------------------------------------------

CHAR_REP_MAP: dict[str, str] = {
    "：": ",",
    "；": ",",
    ";": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": " ",
    "·": "-",
    "、": ",",
    "...": "…",
    ",,,": "…",
    "，，，": "…",
    "……": "…",
    "“": "'",
    "”": "'",
    '"': "'",
    "‘": "'",
    "’": "'",
    "（": "'",
    "）": "'",
    "(": "'",
    ")": "'",
    "《": "'",
    "》": "'",
    "【": "'",
    "】": "'",
    "[": "'",
    "]": "'",
    "—": "-",
    "～": "-",
    "~": "-",
    "「": "'",
    "」": "'",
    ":": ",",
}
ZH_CHAR_REP_MAP: dict[str, str] = {"$": ".", **CHAR_REP_MAP}

PINYIN_TONE_PATTERN = (
    r"(?<![a-z])((?:[bpmfdtnlgkhjqxzcsryw]|[zcs]h)?(?:[aeiouüv]|[ae]i|u[aio]|ao|ou|i[aue]|[uüv]e|[uvü]ang?"
    r"|uai|[aeiuv]n|[aeio]ng|ia[no]|i[ao]ng)|ng|er)([1-5])"
)
ENGLISH_CONTRACTION_PATTERN = r"(what|where|who|which|how|t?here|it|s?he|that|this)'s"
_EMAIL_ONLY = re.compile(r"^[a-zA-Z0-9]+@[a-zA-Z0-9]+\.[a-zA-Z]+$")
_CJK_CHAR = re.compile(
    r"([\u1100-\u11ff\u2e80-\ua4cf\ua840-\uD7AF\uF900-\uFAFF\uFE30-\uFE4F\uFF65-\uFFDC\U00020000-\U0002FFFF])"
)

_PINYIN = re.compile(PINYIN_TONE_PATTERN, re.IGNORECASE)
_CONTRACTION = re.compile(ENGLISH_CONTRACTION_PATTERN, re.IGNORECASE)


def _char_map_pattern(mapping: Mapping[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(key) for key in mapping))


_CHAR_REP = _char_map_pattern(CHAR_REP_MAP)
_ZH_CHAR_REP = _char_map_pattern(ZH_CHAR_REP_MAP)


def use_chinese(text: str) -> bool:
    """The official language decision for a whole text (zh unless it looks English)."""
    if re.search(r"[\u4e00-\u9fff]", text) or not re.search(r"[a-zA-Z]", text):
        return True
    if _EMAIL_ONLY.match(text):
        return True
    return bool(_PINYIN.search(text))


def tokenize_by_cjk_char(line: str) -> str:
    """Official pre-tokenizer: CJK characters become words of their own, all upper case."""
    parts = _CJK_CHAR.split(line.strip())
    return " ".join(part.strip().upper() for part in parts if part.strip())


def correct_pinyin(pinyin: str) -> str:
    """Official `correct_pinyin`: ``ju4`` -> ``JV4``, ``xuan2`` -> ``XVAN2``; others unchanged."""
    if pinyin[0] not in "jqxJQX":
        return pinyin
    return re.sub(r"([jqx])[uü](n|e|an)*(\d)", r"\g<1>v\g<2>\g<3>", pinyin, flags=re.IGNORECASE).upper()


def apply_glossary(text: str, glossary: Glossary, lang: str) -> str:
    """Official glossary semantics: longest term first, case-insensitive, per-language value."""
    for term in sorted(glossary, key=len, reverse=True):
        value = glossary[term]
        replacement = value if isinstance(value, str) else value.get(lang, term)
        text = re.sub(re.escape(term), lambda _m, r=replacement: r, text, flags=re.IGNORECASE)
    return text


# --------------------------------------------------------------------------------------
# Number words
# --------------------------------------------------------------------------------------

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_BIG_UNITS = ("", "万", "亿", "万亿")


def zh_digits(digits: str) -> str:
    """Digit by digit: ``0571`` -> ``零五七一``."""
    return "".join(_ZH_DIGITS[int(d)] for d in digits)


def _zh_group(group: str, at_head: bool) -> str:
    """Up to four digits (千百十个). Thousands say 两 for 2, as nemo's digit_alt table does;
    a 1 in the tens place is 十 only at the very head of the number (十三 but 一百一十)."""
    out: list[str] = []
    zero_pending = False
    for i, ch in enumerate(group):
        place = len(group) - 1 - i
        digit = int(ch)
        if digit == 0:
            zero_pending = bool(out)
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        if place == 3:
            out.append(("两" if digit == 2 else _ZH_DIGITS[digit]) + "千")
        elif place == 2:
            out.append(_ZH_DIGITS[digit] + "百")
        elif place == 1:
            out.append("十" if digit == 1 and at_head and not out else _ZH_DIGITS[digit] + "十")
        else:
            out.append(_ZH_DIGITS[digit])
    return "".join(out)


def zh_cardinal(digits: str) -> str:
    """``2000`` -> ``两千``, ``316`` -> ``三百一十六``, ``120345`` -> ``十二万零三百四十五``."""
    digits = digits.lstrip("0")
    if not digits:
        return "零"
    if len(digits) > 16:  # past 千万亿 nobody reads a number, they read digits
        return zh_digits(digits)
    head_len = len(digits) % 4 or 4
    groups = [digits[:head_len]] + [digits[i : i + 4] for i in range(head_len, len(digits), 4)]
    out: list[str] = []
    zero_pending = False
    for index, group in enumerate(groups):
        unit = _ZH_BIG_UNITS[len(groups) - 1 - index]
        if int(group) == 0:
            zero_pending = bool(out)
            continue
        if out and (zero_pending or group[0] == "0"):
            out.append("零")
        out.append("两" if unit and int(group) == 2 else _zh_group(group.lstrip("0"), at_head=not out))
        out.append(unit)
        zero_pending = False
    return "".join(out)


def zh_decimal(integer: str, fraction: str) -> str:
    """``3.14`` -> ``三点一四``."""
    return zh_cardinal(integer) + "点" + zh_digits(fraction)


_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_EN_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion")


def _en_below_1000(n: int) -> list[str]:
    words: list[str] = []
    if n >= 100:
        words += [_EN_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_EN_TENS[n // 10])
        n %= 10
        if n:
            words.append(_EN_ONES[n])
    elif n or not words:
        words.append(_EN_ONES[n])
    return words


def en_digits(digits: str) -> str:
    return " ".join(_EN_ONES[int(d)] for d in digits)


def en_cardinal(digits: str) -> str:
    """``123`` -> ``one hundred twenty three`` (nemo style: no "and", no hyphens)."""
    significant = digits.lstrip("0")
    if not significant:
        return "zero"
    if len(significant) > 18:  # past the quadrillions, and int() refuses very long strings
        return en_digits(digits)
    n = int(significant)
    words: list[str] = []
    for scale in reversed(range(len(_EN_SCALES))):
        chunk = n // 1000**scale % 1000
        if chunk:
            words += _en_below_1000(chunk)
            if _EN_SCALES[scale]:
                words.append(_EN_SCALES[scale])
    return " ".join(words)


_EN_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def en_ordinal(digits: str) -> str:
    """``22`` -> ``twenty second``."""
    words = en_cardinal(digits).split()
    last = words[-1]
    if last in _EN_ORDINAL_IRREGULAR:
        words[-1] = _EN_ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def en_year(digits: str) -> str:
    """``1999`` -> ``nineteen ninety nine``, ``2005`` -> ``two thousand five``,
    ``1900`` -> ``nineteen hundred``, ``1905`` -> ``nineteen oh five``."""
    high, low = int(digits[:2]), int(digits[2:])
    if digits[1:3] == "00":  # 2000-2009, 1000-1009
        return en_cardinal(digits)
    if low == 0:
        return f"{en_cardinal(str(high))} hundred"
    if low < 10:
        return f"{en_cardinal(str(high))} oh {_EN_ONES[low]}"
    return f"{en_cardinal(str(high))} {en_cardinal(str(low))}"


def en_decimal(integer: str, fraction: str) -> str:
    return f"{en_cardinal(integer or '0')} point {en_digits(fraction)}"


def _plain(number: str) -> str:
    """Strip thousands separators: ``1,234`` -> ``1234``."""
    return number.replace(",", "")


# --------------------------------------------------------------------------------------
# Rules: (pattern, handler) pairs applied in order. Every handler turns all the ASCII
# digits it matched into words, so a later rule never re-reads an earlier rule's output,
# and the final catch-all cardinal rule leaves no digit behind.
# --------------------------------------------------------------------------------------

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

# Starts only where a digit run starts: trying every position inside a long run would make
# each rule quadratic in the run's length.
_NUM = r"(?<![0-9])(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)"
_SIGN = r"(?:(?<![0-9A-Za-z])-)"
_AMPM = r"(?P<ampm>[aApP]\.[mM]\.|[aApP]\.[mM](?![A-Za-z])|[aApP][mM](?![A-Za-z]))"
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_MONTH_BY_NAME = {name.lower(): i + 1 for i, name in enumerate(_MONTHS)}
_MONTH_BY_NAME.update({name[:3].lower(): i + 1 for i, name in enumerate(_MONTHS)})
_MONTH_BY_NAME["sept"] = 9
_MONTH_NAME_RE = (
    r"(?P<month>(?:"
    + "|".join(f"{n.title()}|{n.upper()}" for n in sorted(_MONTH_BY_NAME, key=len, reverse=True))
    + r")\.?)"
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9])"
)


def _valid_date(month: str, day: str) -> bool:
    return 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def _is_pm(ampm: str | None) -> bool:
    return bool(ampm) and ampm[0] in "pP"


def _keeps_full_stop(m: re.Match[str]) -> str:
    """``at 3 p.m.`` ends the sentence: when the am/pm dots swallow the full stop, give it back."""
    ampm = m.group("ampm") or ""
    if not ampm.endswith("."):
        return ""
    rest = m.string[m.end() :]
    return "." if re.match(r"\s*$|\s+[A-Z\u4e00-\u9fff]", rest) else ""


def _email_reader(digits: Callable[[str], str]) -> Callable[[re.Match[str]], str]:
    def read(m: re.Match[str]) -> str:
        local, domain = m.group(0).split("@", 1)

        def spell(part: str) -> str:
            part = re.sub(r"[0-9]+", lambda d: f" {digits(d.group(0))} ", part)
            return re.sub(r"\s+", " ", part.replace(".", " dot ").replace("_", " underscore ")).strip()

        return f" {spell(local)} at {spell(domain)} "

    return read


# ---- Chinese ---------------------------------------------------------------------------

_ZH_CLASSIFIERS = (
    "个|只|件|位|名|张|本|次|条|台|辆|岁|种|份|双|对|杯|瓶|碗|间|层|斤|周|天|年|小时|个小时|分钟|秒钟"
    "|公里|千米|千克|公斤|米|倍|遍|趟|部|盏|扇|把|首|篇|门|所|家|场|分|元|块"
)
_ZH_PHONE_CONTEXT = r"(电话|手机|号码|热线|验证码|编号|尾号|卡号|工号|学号|房间|房号|车次|航班|密码|分机|邮编)"
_ZH_DAY_PARTS = ("上午", "下午", "早上", "晚上", "中午", "凌晨", "傍晚")
_ZH_MATH = {"+": "加", "×": "乘", "÷": "除以", "=": "等于"}
_ZH_CURRENCY_SYMBOL = {"US$": "美元", "HK$": "港元", "$": "美元", "¥": "元", "￥": "元", "€": "欧元", "£": "英镑"}
_CURRENCY_CODES_ZH = {
    "USD": "美元",
    "EUR": "欧元",
    "GBP": "英镑",
    "CNY": "人民币",
    "RMB": "人民币",
    "JPY": "日元",
    "HKD": "港元",
}
_ZH_UNITS = {
    "°C": "摄氏度",
    "°c": "摄氏度",
    "℃": "摄氏度",
    "ºC": "摄氏度",
    "°F": "华氏度",
    "℉": "华氏度",
    "°": "度",
    "km/h": "千米每小时",
    "km²": "平方千米",
    "km2": "平方千米",
    "km": "千米",
    "KM": "千米",
    "Km": "千米",
    "m²": "平方米",
    "㎡": "平方米",
    "m2": "平方米",
    "m³": "立方米",
    "m3": "立方米",
    "cm": "厘米",
    "mm": "毫米",
    "nm": "纳米",
    "m": "米",
    "kg": "千克",
    "KG": "千克",
    "mg": "毫克",
    "g": "克",
    "lbs": "磅",
    "lb": "磅",
    "ml": "毫升",
    "mL": "毫升",
    "L": "升",
    "l": "升",
    "kWh": "千瓦时",
    "kwh": "千瓦时",
    "kW": "千瓦",
    "kw": "千瓦",
    "W": "瓦",
    "V": "伏",
    "mAh": "毫安时",
    "Hz": "赫兹",
    "kHz": "千赫兹",
    "MHz": "兆赫兹",
    "GHz": "吉赫兹",
    "dB": "分贝",
    "db": "分贝",
    "ms": "毫秒",
    "min": "分钟",
    "h": "小时",
    "s": "秒",
    "mph": "英里每小时",
    "mi": "英里",
    "ft": "英尺",
    "inch": "英寸",
    "Pa": "帕",
    "kPa": "千帕",
    "hPa": "百帕",
}


def _zh_number(number: str, fraction: str | None = None, negative: bool = False) -> str:
    words = zh_decimal(_plain(number), fraction) if fraction else zh_cardinal(_plain(number))
    return ("负" if negative else "") + words


def _zh_hour(hour: str) -> str:
    return "两" if int(hour) == 2 else zh_cardinal(hour)  # 两点, as nemo's hour table


def _zh_date(m: re.Match[str]) -> str:
    year, month, day = m.group("y"), m.group("m"), m.group("d")
    if not _valid_date(month, day):
        return m.group(0)
    return f"{zh_digits(year)}年{zh_cardinal(month)}月{zh_cardinal(day)}{m.group('suffix') or '日'}"


def _zh_clock(m: re.Match[str]) -> str:
    hour, minute, second = m.group("h"), m.group("min"), m.group("s")
    ampm = m.group("ampm")
    said_already = m.string[max(0, m.start() - 8) : m.start()].rstrip().endswith(_ZH_DAY_PARTS)
    prefix = "" if not ampm or said_already else ("下午" if _is_pm(ampm) else "上午")
    out = prefix + _zh_hour(hour) + "点"
    if minute and int(minute) or second:
        out += zh_cardinal(minute) + "分"
    if second:
        out += zh_cardinal(second) + "秒"
    return out + _keeps_full_stop(m)


def _zh_money(m: re.Match[str]) -> str:
    name = _ZH_CURRENCY_SYMBOL[m.group("cur")]
    amount = _zh_number(m.group("n"), m.group("f"), negative=bool(m.group("neg")))
    return amount + (m.group("q") or "") + name


def _zh_percent(m: re.Match[str]) -> str:
    sign = "负" if m.group("neg") else ""
    if m.group("n") == "100" and not m.group("f"):
        return sign + "百分之百"
    return sign + "百分之" + _zh_number(m.group("n"), m.group("f"))


def _units_pattern(units: Mapping[str, object]) -> str:
    names = sorted(units, key=len, reverse=True)
    return "(?P<unit>" + "|".join(re.escape(u) for u in names) + ")"


def _zh_measure(m: re.Match[str]) -> str:
    return _zh_number(m.group("n"), m.group("f"), bool(m.group("neg"))) + _ZH_UNITS[m.group("unit")]


def _zh_dotted(m: re.Match[str]) -> str:
    return "点".join(zh_digits(p) if len(p) > 1 and p[0] == "0" else zh_cardinal(p) for p in m.group(0).split("."))


def _zh_fraction(m: re.Match[str]) -> str:
    return f"{zh_cardinal(m.group('den'))}分之{zh_cardinal(m.group('num'))}"


def _zh_digit_groups(m: re.Match[str]) -> str:
    return " ".join(zh_digits(group) for group in re.findall(r"[0-9]+", m.group(0)))


def _zh_integer(m: re.Match[str]) -> str:
    number = _plain(m.group("n"))
    sign = "负" if m.group("neg") else ""
    if len(number) > 1 and number[0] == "0":
        return sign + zh_digits(number)
    return sign + zh_cardinal(number)


_ZH_RULES: list[Rule] = [
    # a@b.com -> a at b dot com
    (_EMAIL, _email_reader(zh_digits)),
    # 2024-05-01 -> 二零二四年五月一日
    (
        re.compile(
            r"(?<![0-9])(?P<y>[0-9]{4})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})(?![0-9])"
            r"(?P<suffix>[日号])?"
        ),
        _zh_date,
    ),
    # 2024年, 2020-2024年 -> years digit by digit
    (
        re.compile(r"(?<![0-9])([0-9]{4})(?:([-~～–至到])([0-9]{4}))?(?=年)"),
        lambda m: zh_digits(m.group(1)) + (f"到{zh_digits(m.group(3))}" if m.group(3) else ""),
    ),
    # 6:30, 3:15pm, 10:00:05 -> 六点三十分, 下午三点十五分, 十点零分五秒
    (
        re.compile(
            r"(?<![0-9.])(?P<h>[01]?[0-9]|2[0-4])[:：](?P<min>[0-5][0-9])(?:[:：](?P<s>[0-5][0-9]))?(?![0-9])"
            r"(?:\s*" + _AMPM + r")?"
        ),
        _zh_clock,
    ),
    # 7am -> 上午七点
    (re.compile(r"(?<![0-9.:])(?P<h>1[0-2]|0?[1-9])(?P<min>)(?P<s>)\s?" + _AMPM), _zh_clock),
    # 2点 -> 两点
    (re.compile(r"(?<![0-9.])([01]?[0-9]|2[0-4])(?=[点點])"), lambda m: _zh_hour(m.group(1))),
    # phone numbers, digit by digit: 138-1234-5678, 010-12345678, 电话10086
    (
        re.compile(r"(?<![0-9A-Za-z])(?:\+[0-9]{1,3}[ -]?)?[0-9]{2,4}(?:-[0-9]{3,4}){2,3}(?![0-9])"),
        _zh_digit_groups,
    ),
    (re.compile(r"(?<![0-9A-Za-z])(?:\+[0-9]{1,3}[ -]?)?0[0-9]{2,3}-[0-9]{7,8}(?![0-9])"), _zh_digit_groups),
    (
        re.compile(_ZH_PHONE_CONTEXT + r"([是为:：\s]*)([0-9]+)"),
        lambda m: m.group(1) + m.group(2) + zh_digits(m.group(3)),
    ),
    # 3-5, 3~5 -> 三到五
    (re.compile(r"(?<=[0-9])[-~～–](?=[0-9])"), lambda _m: "到"),
    # $5.99, ¥100, 100 USD
    (
        re.compile(
            r"(?P<neg>-)?(?P<cur>US\$|HK\$|[$¥￥€£])\s?(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?(?P<q>万亿|亿|万|千)?"
        ),
        _zh_money,
    ),
    (
        re.compile(r"(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?\s?(?P<code>USD|EUR|GBP|CNY|RMB|JPY|HKD)(?![A-Za-z])"),
        lambda m: _zh_number(m.group("n"), m.group("f")) + _CURRENCY_CODES_ZH[m.group("code")],
    ),
    # 50% -> 百分之五十
    (re.compile(r"(?P<neg>" + _SIGN + r"|负)?(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?\s?%"), _zh_percent),
    # 25°C, 5kg -> 二十五摄氏度, 五千克
    (
        re.compile(
            r"(?P<neg>" + _SIGN + r")?(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?\s?"
            + _units_pattern(_ZH_UNITS)
            + r"(?![A-Za-z])"
        ),
        _zh_measure,
    ),
    # versions and IP addresses: 1.2.3 -> 一点二点三
    (re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+){2,}(?![0-9])"), _zh_dotted),
    # 1/2 -> 二分之一
    (re.compile(r"(?<![0-9/])(?P<num>[0-9]+)/(?P<den>[0-9]+)(?![0-9/])"), _zh_fraction),
    # -3.14 -> 负三点一四
    (
        re.compile(r"(?P<neg>" + _SIGN + r"|负)?(?<![0-9.])(?P<n>" + _NUM + r")\.(?P<f>[0-9]+)"),
        lambda m: _zh_number(m.group("n"), m.group("f"), bool(m.group("neg"))),
    ),
    # 11-digit mobiles and 13+ digit runs, digit by digit
    (re.compile(r"(?<![0-9,])(?:1[3-9][0-9]{9}|[0-9]{13,})(?![0-9])"), lambda m: zh_digits(m.group(0))),
    # a colon left between digits is no time: a score, 3:2 -> 三比二
    (re.compile(r"(?<=[0-9])[:：](?=[0-9])"), lambda _m: "比"),
    # 1+1=2 -> 一加一等于二
    (re.compile(r"(?<=[0-9])\s?([+×÷=])\s?(?=[0-9-])"), lambda m: _ZH_MATH[m.group(1)]),
    # 2个 -> 两个 (but 第二个)
    (re.compile(r"(?<![0-9.,第])2(?=" + _ZH_CLASSIFIERS + ")"), lambda _m: "两"),
    # everything else: cardinals, 007 digit by digit
    (re.compile(r"(?P<neg>" + _SIGN + r"|负)?(?P<n>" + _NUM + ")"), _zh_integer),
]


# ---- English ---------------------------------------------------------------------------

_EN_ABBREVIATIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bMrs\.(?=\s)"), "Missus"),
    (re.compile(r"\bMr\.(?=\s)"), "Mister"),
    (re.compile(r"\bMs\.(?=\s)"), "Miz"),
    (re.compile(r"\bDr\.(?=\s)"), "Doctor"),
    (re.compile(r"\bProf\.(?=\s)"), "Professor"),
    (re.compile(r"\bvs\.?(?=\s)"), "versus"),
    (re.compile(r"\betc\."), "etcetera."),
    (re.compile(r"\be\.g\.(?=\s)"), "for example"),
    (re.compile(r"\bi\.e\.(?=\s)"), "that is"),
    (re.compile(r"\bNo\.\s?(?=[0-9])"), "number "),
    (re.compile(r"#(?=[0-9])"), "number "),
    (re.compile(r"\s?&\s?"), " and "),
    (re.compile(r"\b24/7\b"), "twenty four seven"),
]
_EN_CURRENCY = {
    "US$": ("dollar", "dollars", "cent", "cents"),
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "sen", "sen"),
    "￥": ("yuan", "yuan", "fen", "fen"),
    "HK$": ("Hong Kong dollar", "Hong Kong dollars", "cent", "cents"),
}
_EN_CURRENCY_CODES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "￥", "RMB": "￥", "HKD": "HK$"}
# unit -> (singular, plural). Single-letter units only count when glued to the number.
_EN_UNITS: dict[str, tuple[str, str]] = {
    "°C": ("degree Celsius", "degrees Celsius"),
    "°c": ("degree Celsius", "degrees Celsius"),
    "℃": ("degree Celsius", "degrees Celsius"),
    "ºC": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "℉": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "km²": ("square kilometer", "square kilometers"),
    "km": ("kilometer", "kilometers"),
    "m²": ("square meter", "square meters"),
    "m³": ("cubic meter", "cubic meters"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "lbs": ("pound", "pounds"),
    "lb": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "kW": ("kilowatt", "kilowatts"),
    "mAh": ("milliamp hour", "milliamp hours"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "dB": ("decibel", "decibels"),
    "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"),
    "TB": ("terabyte", "terabytes"),
    "ms": ("millisecond", "milliseconds"),
    "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"),
    "sec": ("second", "seconds"),
    "hrs": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "mph": ("mile per hour", "miles per hour"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "kPa": ("kilopascal", "kilopascals"),
    "hPa": ("hectopascal", "hectopascals"),
}
_EN_GLUED_UNITS: dict[str, tuple[str, str]] = {
    "m": ("meter", "meters"),
    "g": ("gram", "grams"),
    "l": ("liter", "liters"),
    "L": ("liter", "liters"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
    "h": ("hour", "hours"),
    "s": ("second", "seconds"),
}
_EN_MATH = {"+": " plus ", "×": " times ", "÷": " divided by ", "=": " equals "}
_EN_FRACTION_NAMES = {"2": ("half", "halves"), "4": ("quarter", "quarters")}


def _en_number(number: str, fraction: str | None = None, negative: bool = False) -> str:
    words = en_decimal(_plain(number), fraction) if fraction is not None else en_cardinal(_plain(number))
    return ("minus " if negative else "") + words


def _is_one(m: re.Match[str]) -> bool:
    return _plain(m.group("n")) == "1" and not m.group("f")


def _en_date_words(year: str | None, month: int, day: str | None) -> str:
    words = [_MONTHS[month - 1]]
    if day:
        words.append(en_ordinal(day))
    if year:
        words.append(en_year(year) if len(year) == 4 and year[0] in "12" else en_cardinal(year))
    return " ".join(words)


def _en_ymd(m: re.Match[str]) -> str:
    if not _valid_date(m.group("m"), m.group("d")):
        return m.group(0)
    return _en_date_words(m.group("y"), int(m.group("m")), m.group("d"))


def _en_month_day(m: re.Match[str]) -> str:
    month = _MONTH_BY_NAME[m.group("month").rstrip(".").lower()]
    if not 1 <= int(m.group("d")) <= 31:
        return m.group(0)
    return _en_date_words(m.group("y"), month, m.group("d"))


def _en_day_month(m: re.Match[str]) -> str:
    month = _MONTH_BY_NAME[m.group("month").rstrip(".").lower()]
    if not 1 <= int(m.group("d")) <= 31:
        return m.group(0)
    year = f" {en_year(m.group('y'))}" if m.group("y") else ""
    return f"{m.group('the') or 'the'} {en_ordinal(m.group('d'))} of {_MONTHS[month - 1]}{year}"


def _en_minutes(minute: str) -> str:
    return f"oh {_EN_ONES[int(minute)]}" if minute[0] == "0" else en_cardinal(minute)


def _en_clock(m: re.Match[str]) -> str:
    hour, minute, second = m.group("h"), m.group("min"), m.group("s")
    ampm = m.group("ampm")
    suffix = (" PM" if _is_pm(ampm) else " AM") if ampm else ""
    if second:
        text = f"{en_cardinal(hour)} hours {en_cardinal(minute)} minutes and {en_cardinal(second)} seconds"
    elif int(minute) == 0:
        text = en_cardinal(hour) + (suffix if suffix else " o'clock")
        return text + _keeps_full_stop(m)
    else:
        text = f"{en_cardinal(hour)} {_en_minutes(minute)}"
    return text + suffix + _keeps_full_stop(m)


def _en_hour_ampm(m: re.Match[str]) -> str:
    return en_cardinal(m.group("h")) + (" PM" if _is_pm(m.group("ampm")) else " AM") + _keeps_full_stop(m)


def _en_money(m: re.Match[str]) -> str:
    symbol = m.group("cur") if m.group("cur") else _EN_CURRENCY_CODES[m.group("code")]
    major, majors, minor, minors = _EN_CURRENCY[symbol]
    sign = "minus " if m.group("neg") else ""
    number, fraction, quantity = _plain(m.group("n")), m.group("f"), m.group("q")
    if quantity:
        amount = en_decimal(number, fraction) if fraction else en_cardinal(number)
        return f"{sign}{amount} {quantity.lower()} {majors}"
    if fraction and len(fraction) == 2:
        cents = int(fraction)
        cents_words = f"{en_cardinal(fraction)} {minor if cents == 1 else minors}"
        if not number.strip("0"):
            return sign + cents_words
        main = f"{en_cardinal(number)} {major if number.lstrip('0') == '1' else majors}"
        return sign + main + (f" {cents_words}" if cents else "")
    if fraction:
        return f"{sign}{en_decimal(number, fraction)} {majors}"
    return f"{sign}{en_cardinal(number)} {major if number == '1' else majors}"


def _en_percent(m: re.Match[str]) -> str:
    return _en_number(m.group("n"), m.group("f"), bool(m.group("neg"))) + " percent"


def _en_measure(units: Mapping[str, tuple[str, str]]) -> Callable[[re.Match[str]], str]:
    def read(m: re.Match[str]) -> str:
        singular, plural = units[m.group("unit")]
        return f"{_en_number(m.group('n'), m.group('f'), bool(m.group('neg')))} {singular if _is_one(m) else plural}"

    return read


def _en_fraction(m: re.Match[str]) -> str:
    numerator, denominator = m.group("num"), m.group("den").lstrip("0")
    if denominator in ("", "1"):
        return f"{en_cardinal(numerator)} over {en_cardinal(m.group('den'))}"
    if denominator in _EN_FRACTION_NAMES:
        singular, plural = _EN_FRACTION_NAMES[denominator]
    else:
        singular = en_ordinal(denominator)
        plural = singular + "s"
    return f"{en_cardinal(numerator)} {singular if numerator.lstrip('0') == '1' else plural}"


def _en_decade(m: re.Match[str]) -> str:
    words = en_year(m.group(1)) if len(m.group(1)) == 4 else en_cardinal(m.group(1))
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _en_integer(m: re.Match[str]) -> str:
    number = _plain(m.group("n"))
    sign = "minus " if m.group("neg") else ""
    if len(number) > 1 and number[0] == "0":
        return sign + en_digits(number)
    return sign + en_cardinal(number)


_EN_RULES: list[Rule] = [
    # a@b.com -> a at b dot com
    (_EMAIL, _email_reader(en_digits)),
    # 2024-05-01 -> May first twenty twenty four
    (
        re.compile(r"(?<![0-9])(?P<y>[0-9]{4})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})(?![0-9])"),
        _en_ymd,
    ),
    # 12/25/2024 (US order)
    (re.compile(r"(?<![0-9])(?P<m>[0-9]{1,2})/(?P<d>[0-9]{1,2})/(?P<y>[0-9]{4})(?![0-9])"), _en_ymd),
    # May 5, 2024 -> May fifth twenty twenty four
    (
        re.compile(
            r"\b" + _MONTH_NAME_RE + r"\s+(?P<d>[0-9]{1,2})(?:st|nd|rd|th)?(?![0-9])(?:,?\s+(?P<y>[0-9]{4})(?![0-9]))?"
        ),
        _en_month_day,
    ),
    # the 5th of May, 5 May 2024
    (
        re.compile(
            r"(?:\b(?P<the>[Tt]he)\s+)?(?<![0-9])(?P<d>[0-9]{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?"
            + _MONTH_NAME_RE
            + r"(?![A-Za-z])(?:,?\s+(?P<y>[0-9]{4})(?![0-9]))?"
        ),
        _en_day_month,
    ),
    # 6:30, 3:15 p.m., 18:45, 2:00 -> six thirty, three fifteen PM, eighteen forty five, two o'clock
    (
        re.compile(
            r"(?<![0-9.])(?P<h>[01]?[0-9]|2[0-4])[:：](?P<min>[0-5][0-9])(?:[:：](?P<s>[0-5][0-9]))?(?![0-9])"
            r"(?:\s*" + _AMPM + r")?"
        ),
        _en_clock,
    ),
    # 7am -> seven AM
    (re.compile(r"(?<![0-9.:])(?P<h>1[0-2]|0?[1-9])\s?" + _AMPM), _en_hour_ampm),
    # (555) 123-4567 -> five five five, one two three, four five six seven
    (
        re.compile(
            r"(?<![0-9A-Za-z])(?:\+[0-9]{1,3}[ -]?)?(?:\([0-9]{3}\)\s?|[0-9]{3}[-.])[0-9]{3}[-.][0-9]{4}(?![0-9])"
        ),
        lambda m: ", ".join(en_digits(g) for g in re.findall(r"[0-9]+", m.group(0))),
    ),
    # 10-20 -> ten to twenty
    (re.compile(r"(?<=[0-9])[-~–](?=[0-9])"), lambda _m: " to "),
    # $5.99, $1.5 million, 5 USD
    (
        re.compile(
            r"(?P<neg>-)?(?P<cur>US\$|HK\$|[$€£¥￥])\s?(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?"
            r"(?:\s?(?P<q>thousand|million|billion|trillion))?(?![0-9])(?P<code>)"
        ),
        _en_money,
    ),
    (
        re.compile(
            r"(?P<neg>)(?P<cur>)(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?(?P<q>)\s?"
            r"(?P<code>USD|EUR|GBP|JPY|CNY|RMB|HKD)(?![A-Za-z])"
        ),
        _en_money,
    ),
    # 40% -> forty percent
    (re.compile(r"(?P<neg>" + _SIGN + r")?(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?\s?%"), _en_percent),
    # 1990s, the 80s -> nineteen nineties, the eighties
    (re.compile(r"(?<![0-9])([12][0-9]{2}0)s\b"), _en_decade),
    (re.compile(r"(?:(?<=[Tt]he )|')([1-9]0)s\b"), _en_decade),
    # 12°C, 5 km (units that may stand apart from the number)
    (
        re.compile(
            r"(?P<neg>" + _SIGN + r")?(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?\s?"
            + _units_pattern(_EN_UNITS)
            + r"(?![A-Za-z0-9])"
        ),
        _en_measure(_EN_UNITS),
    ),
    # 5m, 2g, 10s (one-letter units only when glued to the number)
    (
        re.compile(
            r"(?P<neg>" + _SIGN + r")?(?P<n>" + _NUM + r")(?:\.(?P<f>[0-9]+))?"
            + _units_pattern(_EN_GLUED_UNITS)
            + r"(?![A-Za-z0-9])"
        ),
        _en_measure(_EN_GLUED_UNITS),
    ),
    # 1st, 22nd -> first, twenty second
    (re.compile(r"(?<![0-9])([0-9]+)(?:st|nd|rd|th)\b", re.IGNORECASE), lambda m: en_ordinal(m.group(1))),
    # versions and IP addresses: 1.2.3 -> one point two point three
    (
        re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+){2,}(?![0-9])"),
        lambda m: " point ".join(
            en_digits(p) if len(p) > 1 and p[0] == "0" else en_cardinal(p) for p in m.group(0).split(".")
        ),
    ),
    # 1/2, 3/4 -> one half, three quarters
    (re.compile(r"(?<![0-9/])(?P<num>[0-9]+)/(?P<den>[0-9]+)(?![0-9/])"), _en_fraction),
    # -3.14 -> minus three point one four
    (
        re.compile(r"(?P<neg>" + _SIGN + r")?(?<![0-9.])(?P<n>" + _NUM + r")\.(?P<f>[0-9]+)"),
        lambda m: _en_number(m.group("n"), m.group("f"), bool(m.group("neg"))),
    ),
    # 2+2=4 -> two plus two equals four
    (re.compile(r"(?<=[0-9])\s?([+×÷=])\s?(?=[0-9-])"), lambda m: _EN_MATH[m.group(1)]),
    # runs too long to be a number, digit by digit
    (re.compile(r"(?<![0-9,])[0-9]{19,}(?![0-9])"), lambda m: en_digits(m.group(0))),
    # a colon left between digits is no time: a score, 3:2 -> three to two
    (re.compile(r"(?<=[0-9]):(?=[0-9])"), lambda _m: " to "),
    # four-digit numbers from 1000 to 2999 read as years, as nemo does
    (re.compile(r"(?<![0-9,.-])([12][0-9]{3})(?![0-9]|,[0-9])"), lambda m: en_year(m.group(1))),
    # everything else: cardinals, 007 digit by digit
    (re.compile(r"(?P<neg>" + _SIGN + r")?(?P<n>" + _NUM + ")"), _en_integer),
]


def _spaced(handler: Callable[[re.Match[str]], str]) -> Callable[[re.Match[str]], str]:
    """English words must not glue to neighbouring letters: ``MP3`` -> ``MP three``."""

    def read(m: re.Match[str]) -> str:
        out = handler(m)
        if out == m.group(0):
            return out
        before = m.string[m.start() - 1] if m.start() else ""
        after = m.string[m.end()] if m.end() < len(m.string) else ""
        if before.isalnum() and not out.startswith(" "):
            out = " " + out
        if after.isalnum() and not out.endswith(" "):
            out += " "
        return out

    return read


# --------------------------------------------------------------------------------------
# Character clean-up
# --------------------------------------------------------------------------------------

_DROPPED_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn"}
_PLACEHOLDER_BASE = 0xF0000  # private use plane: removed from the input first, never confused


def _fold_char(ch: str) -> str:
    """Digits of any script become ASCII digits, fullwidth letters and ％ become ASCII;
    control, format and private-use characters go (they are never spoken)."""
    category = unicodedata.category(ch)
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if "\uff21" <= ch <= "\uff3a" or "\uff41" <= ch <= "\uff5a" or ch == "\uff05":
        return chr(ord(ch) - 0xFEE0)
    if category in ("Zl", "Zp") or (category == "Cc" and ch not in "\t\n\r"):
        return " "
    if category in _DROPPED_CATEGORIES and ch not in "\t\n\r":
        return ""
    return ch


def _drop_pictographs(text: str) -> str:
    """Emoji, dingbats and other symbols the model cannot say (units were read before)."""
    return "".join(
        " "
        if unicodedata.category(ch) in ("So", "Me") or "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"
        else ch
        for ch in text
    )


def _protect(text: str, pattern: re.Pattern[str]) -> tuple[str, list[str]]:
    """Swap each match for a private-use placeholder so no rule reads its digits."""
    saved: list[str] = []

    def hide(m: re.Match[str]) -> str:
        saved.append(m.group(0))
        return chr(_PLACEHOLDER_BASE + len(saved) - 1)

    return pattern.sub(hide, text), saved


def _restore(text: str, saved: Sequence[str], fix: Callable[[str], str]) -> str:
    for index, original in enumerate(saved):
        text = text.replace(chr(_PLACEHOLDER_BASE + index), fix(original))
    return text


def _apply(rules: Sequence[Rule], text: str, spaced: bool = False) -> str:
    for pattern, handler in rules:
        text = pattern.sub(_spaced(handler) if spaced else handler, text)
    return text


def normalize(text: str, language: str | None = None, glossary: Glossary | None = None) -> str:
    """Written form -> spoken form, the way the official frontend's normaliser would say it.

    `language` forces ``"zh"`` (anything else reads as English); by default the official
    `use_chinese` decides for the whole text. Never raises; the result may be empty or
    punctuation only.
    """
    lang = (language or ("zh" if use_chinese(text) else "en")).lower()
    text = _CONTRACTION.sub(r"\1 is", text)
    if glossary:
        text = apply_glossary(text, glossary, lang)
    text = "".join(_fold_char(ch) for ch in text)
    if lang == "zh":
        text, pinyin = _protect(text, _PINYIN)
        text = _apply(_ZH_RULES, text)
        text = _restore(text, pinyin, correct_pinyin)
        text = _drop_pictographs(text)
        text = _ZH_CHAR_REP.sub(lambda m: ZH_CHAR_REP_MAP[m.group(0)], text)
    else:
        for pattern, spoken in _EN_ABBREVIATIONS:
            text = pattern.sub(spoken, text)
        text = _apply(_EN_RULES, text, spaced=True)
        text = _drop_pictographs(text)
        text = _CHAR_REP.sub(lambda m: CHAR_REP_MAP[m.group(0)], text)
    return re.sub(r"\s+", " ", text).strip()


def is_speakable(text: str) -> bool:
    """True if any letter or digit is left for a voice to say."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


# --------------------------------------------------------------------------------------
# Segmenting, ported from the official TextTokenizer.split_segments(_by_token)
# --------------------------------------------------------------------------------------

SENTENCE_END_TOKENS: tuple[str, ...] = (".", "!", "?", "▁.", "▁?", "▁...")
_COMMA_TOKENS: tuple[str, ...] = (",", "▁,")
_QUOTE_TOKENS: tuple[str, ...] = ("'", "▁'")


def _split_by_token(
    tokens: Sequence[str], split_tokens: Sequence[str], max_len: int, quick_streaming_tokens: int
) -> list[list[str]]:
    """Cut at `split_tokens`; a piece holding a comma is cut at commas first, else at "-";
    a piece that is still too long is cut every `max_len` tokens. Then short neighbours merge."""
    if not tokens:
        return []
    segments: list[list[str]] = []
    current: list[str] = []
    for i, token in enumerate(tokens):
        current.append(token)
        if not any(t in split_tokens for t in _COMMA_TOKENS) and any(t in current for t in _COMMA_TOKENS):
            pieces = _split_by_token(current, _COMMA_TOKENS, max_len, quick_streaming_tokens)
        elif "-" not in split_tokens and "-" in current:
            pieces = _split_by_token(current, ("-",), max_len, quick_streaming_tokens)
        elif len(current) <= max_len:
            if token in split_tokens and len(current) > 2:
                if i < len(tokens) - 1 and tokens[i + 1] in _QUOTE_TOKENS:
                    # Official behaviour, kept for parity: the closing quote ends this
                    # segment and is still read again as the first token of the next one.
                    current.append(tokens[i + 1])
                segments.append(current)
                current = []
            continue
        else:
            pieces = [current[j : j + max_len] for j in range(0, len(current), max_len)]
            log.warning("A text piece of %d tokens has no place to split; cut every %d tokens", len(current), max_len)
        segments.extend(pieces)
        current = []
    if current:
        segments.append(current)
    return _merge_segments(segments, max_len, quick_streaming_tokens)


def _merge_segments(segments: Sequence[list[str]], max_len: int, quick_streaming_tokens: int) -> list[list[str]]:
    """Neighbours merge while they fit in `max_len` once `quick_streaming_tokens` have passed,
    or whenever together they fit in half of it."""
    merged: list[list[str]] = []
    total = 0
    for segment in segments:
        total += len(segment)
        if not segment:
            continue
        if not merged:
            merged.append(segment)
        elif len(merged[-1]) + len(segment) <= max_len and total > quick_streaming_tokens:
            merged[-1] = merged[-1] + segment
        elif len(merged[-1]) + len(segment) <= max_len / 2:
            merged[-1] = merged[-1] + segment
        else:
            merged.append(segment)
    return merged


def split_segments(
    tokens: Sequence[str], max_text_tokens_per_segment: int = 120, quick_streaming_tokens: int = 0
) -> list[list[str]]:
    """The official `TextTokenizer.split_segments`, token for token."""
    return _split_by_token(tokens, SENTENCE_END_TOKENS, max_text_tokens_per_segment, quick_streaming_tokens)


# --------------------------------------------------------------------------------------
# The frontend
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextFrontend:
    """Normaliser + BPE tokenizer + segmenter for one IndexTTS2 model folder's `bpe.model`.

    Safe to share between worker threads: nothing changes after `load`, and sentencepiece
    encoding does not mutate the processor."""

    sp: SentencePieceProcessor
    language: str | None = None
    """Force ``"zh"`` or ``"en"`` normalisation; None lets the official rule decide per text."""
    glossary: dict[str, str | dict[str, str]] = field(default_factory=dict)
    """Term -> reading, or term -> {"zh": ..., "en": ...}, as the official glossary.yaml."""

    @classmethod
    def load(
        cls, bpe_model_path: Path, glossary_path: Path | None = None, language: str | None = None
    ) -> TextFrontend:
        bpe_model_path = Path(bpe_model_path)
        if not bpe_model_path.is_file():
            raise FileNotFoundError(f"BPE model not found: {bpe_model_path} (expected bpe.model in the model folder)")
        sp = SentencePieceProcessor(model_file=str(bpe_model_path))
        glossary: dict[str, str | dict[str, str]] = {}
        if glossary_path is not None and Path(glossary_path).is_file():
            import yaml  # only needed when a model folder ships a glossary

            loaded = yaml.safe_load(Path(glossary_path).read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                glossary = {str(k): v for k, v in loaded.items()}
        return cls(sp=sp, language=language, glossary=glossary)

    @property
    def unk_id(self) -> int:
        return self.sp.unk_id()

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def normalize(self, text: str) -> str:
        return normalize(text, language=self.language, glossary=self.glossary)

    def tokenize(self, text: str) -> list[str]:
        """BPE pieces exactly as the official `TextTokenizer.tokenize` with this normaliser.

        Raises NoSpeakableTextError when nothing in the text can be spoken.
        """
        if len(text.strip()) == 1:
            # Official quirk: one visible character is encoded as is, unnormalised.
            self._require_speakable(text, text)
            return self.sp.encode(text, out_type=str)
        normalized = self.normalize(text)
        self._require_speakable(text, normalized)
        return self.sp.encode(tokenize_by_cjk_char(normalized), out_type=str)

    def encode(self, text: str) -> list[int]:
        """Token ids, as the official `TextTokenizer.encode`."""
        return self.tokens_to_ids(self.tokenize(text))

    def tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.sp.piece_to_id(token) for token in tokens]

    def split_segments(
        self, tokens: Sequence[str], max_text_tokens_per_segment: int = 120, quick_streaming_tokens: int = 0
    ) -> list[list[str]]:
        return split_segments(tokens, max_text_tokens_per_segment, quick_streaming_tokens)

    def segment_ids(
        self, text: str, max_text_tokens_per_segment: int = 120, quick_streaming_tokens: int = 0
    ) -> list[list[int]]:
        """Text -> the GPT inputs the official `infer` feeds, one id list per segment."""
        segments = self.split_segments(self.tokenize(text), max_text_tokens_per_segment, quick_streaming_tokens)
        return [self.tokens_to_ids(segment) for segment in segments]

    @staticmethod
    def _require_speakable(original: str, normalized: str) -> None:
        if not is_speakable(normalized):
            shown = original if len(original) <= 40 else original[:37] + "..."
            raise NoSpeakableTextError(
                f"Nothing to speak in {shown!r}: it has only punctuation, symbols, emoji or spaces. "
                "Send text with at least one letter or digit."
            )
