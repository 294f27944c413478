"""Content detection of personal data that no schema declared: mainland mobile numbers, resident identity numbers
(GB 11643-1999), bank card numbers and e-mail addresses inside free text.

Two stages, because this runs on the collector's ingest hot path for every event:

1. :func:`may_hold_personal_data` looks at a whole encoded event (its protobuf bytes) with two C-level passes: one
   ``bytes.translate`` that turns every digit into ``0`` and every space or dash into ``-``, then substring searches
   for the shapes every detected number must contain (11 digits in a row, or 3-4-4 digits in groups) and a ``memchr``
   for ``@``. An event without them (nearly all events) costs that and nothing else.
2. :func:`find_personal_data` runs the precise patterns on one string and validates each candidate: a mobile number's
   ``1[3-9]`` prefix, an identity number's region, date of birth and check digit, a card number's issuer prefix and
   length and its Luhn digit. Numbers glued to letters or to other digits (order ids, hex digests, longer digit
   runs, decimals) are not candidates at all.

Only the forms stage 1 lets through are detected by stage 2, so what is found in a value never depends on what else
the event carries.
"""

from __future__ import annotations

import datetime
import re
from typing import NamedTuple

MOBILE = "mobile"
ID_NUMBER = "id_number"
BANK_CARD = "bank_card"
EMAIL = "email"
PERSONAL_DATA_KINDS = (MOBILE, ID_NUMBER, BANK_CARD, EMAIL)
KIND_WORDS = {
    MOBILE: "a mobile number",
    ID_NUMBER: "a resident identity number",
    BANK_CARD: "a bank card number",
    EMAIL: "an e-mail address",
}

# -- stage 1: the whole encoded event ----------------------------------------------------------------------------

_CLASSES = bytearray(b"." * 256)
_CLASSES[ord("0") : ord("9") + 1] = b"0" * 10
_CLASSES[ord(" ")] = _CLASSES[ord("-")] = ord("-")
_CLASSES = bytes(_CLASSES)
_RUN = b"0" * 11  # 11 digits in a row: every contiguous mobile, identity and card number
_GROUPED = b"000-0000-0000"  # 3-4-4 digits: a grouped mobile number, and inside every grouped card number
_AT = 0x40  # an int: ``int in bytes`` is a plain memchr
# "@", a domain label and a dot: the pattern starts with a literal, so it is searched for as fast as "@" is. (A lone
# 0x40 byte is common in an encoding: a varint, or the length 64.)
_EMAIL_HINT = re.compile(rb"@[A-Za-z0-9-]{1,63}\.[A-Za-z]").search
_EVENT_ID_HEAD = b"\n$"  # field 1 (event_id), 36 bytes: a UUID, whose hex digits are no personal data


def may_hold_personal_data(encoded: bytes) -> bool:
    """False when no string in ``encoded`` (a serialized event) can hold a detected value; True means: look."""
    # Operators, not methods: bytes.find and startswith parse their arguments the slow way (~1,500 instructions).
    classes = (encoded[38:] if encoded[:2] == _EVENT_ID_HEAD else encoded).translate(_CLASSES)
    return _RUN in classes or _GROUPED in classes or (_AT in encoded and _EMAIL_HINT(encoded) is not None)


def _may_hold_text(data: bytes) -> bool:
    """:func:`may_hold_personal_data` for one string's UTF-8 bytes (no event id to skip)."""
    classes = data.translate(_CLASSES)
    return _RUN in classes or _GROUPED in classes or (_AT in data and _EMAIL_HINT(data) is not None)


# -- stage 2: one string -----------------------------------------------------------------------------------------

# Not a candidate when glued to a letter or digit before, or after (a trailing "." ends a sentence, but "." and a
# digit continue a decimal). The look-behind also keeps every search linear: a match can start only at the edge of a
# run, not at each of its characters.
_BEFORE = r"(?<![0-9A-Za-z.])"
_AFTER = r"(?![0-9A-Za-z]|\.[0-9])"
_MOBILE = re.compile(
    r"(?<![0-9A-Za-z.+%])(?:(?:\+|%2[Bb]|00)?86[ -]?)?1[3-9][0-9](?:[0-9]{8}|[ -][0-9]{4}[ -][0-9]{4})" + _AFTER
)
_ID_NUMBER = re.compile(_BEFORE + r"[1-8][0-9]{5}(?:18|19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}[0-9Xx]" + _AFTER)
_CARD = re.compile(_BEFORE + r"(?:[0-9]{13,19}|[0-9]{4}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{1,4}(?:\1[0-9]{1,3})?)" + _AFTER)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9-])"
)
_SEPARATORS = str.maketrans("", "", " -")

# GB 11643-1999: weights of the first 17 digits, and the check character for the weighted sum mod 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB/T 2260 province codes (the first two digits), Taiwan, Hong Kong and Macao included.
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54}
    | {61, 62, 63, 64, 65, 71, 81, 82, 83}
)


class Found(NamedTuple):
    """One detected value: where it is in the string, and what it is (one of :data:`PERSONAL_DATA_KINDS`)."""

    start: int
    end: int
    kind: str


def valid_id_number(text: str) -> bool:
    """An 18-character resident identity number: a province, a real date of birth not in the future, and the
    GB 11643-1999 check character (``X`` or ``x`` for 10)."""
    if len(text) != 18 or not text[:17].isdigit() or int(text[:2]) not in _PROVINCES:
        return False
    try:
        born = datetime.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > datetime.date.today():
        return False
    total = sum(int(d) * w for d, w in zip(text, _ID_WEIGHTS, strict=False))
    return _ID_CHECK[total % 11] == text[17].upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def valid_card_number(digits: str) -> bool:
    """13-19 digits with the issuer prefix and length of a card scheme Chinese banks issue (UnionPay 62, and
    Visa, Mastercard, American Express, JCB, Discover, domestic 60) and a valid Luhn check digit. The prefix rule keeps
    millisecond and microsecond timestamps (they start with 1) and date-led order numbers (2) out."""
    n = len(digits)
    if not 13 <= n <= 19 or not digits.isdigit():
        return False
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        scheme = n in (13, 16, 19)
    elif 51 <= two <= 55 or 2221 <= four <= 2720:
        scheme = n == 16
    elif two in (34, 37):
        scheme = n == 15
    elif two in (60, 62, 65) or 3528 <= four <= 3589 or 644 <= int(digits[:3]) <= 649:
        scheme = n >= 16
    else:
        scheme = False
    return scheme and luhn_ok(digits)


def find_personal_data(text: str, kinds: frozenset[str] | None = None) -> list[Found]:
    """Every detected value in ``text``, in order, none overlapping (an identity number wins over a card number
    of the same digits)."""
    found: list[Found] = []
    if not _may_hold_text(text.encode("utf-8", "surrogatepass")):  # most strings: a few C-level passes
        return found
    if kinds is None or ID_NUMBER in kinds:
        found += [Found(*m.span(), ID_NUMBER) for m in _ID_NUMBER.finditer(text) if valid_id_number(m.group())]
    if kinds is None or BANK_CARD in kinds:
        for m in _CARD.finditer(text):
            if valid_card_number(m.group().translate(_SEPARATORS)) and not _overlaps(found, *m.span()):
                found.append(Found(*m.span(), BANK_CARD))
    if kinds is None or MOBILE in kinds:
        found += [Found(*m.span(), MOBILE) for m in _MOBILE.finditer(text) if not _overlaps(found, *m.span())]
    if (kinds is None or EMAIL in kinds) and "@" in text:
        found += [Found(*m.span(), EMAIL) for m in _EMAIL.finditer(text) if not _overlaps(found, *m.span())]
    found.sort()
    return found


def _overlaps(found: list[Found], start: int, end: int) -> bool:
    return any(f.start < end and start < f.end for f in found)


def mask_personal_data(text: str, found: list[Found]) -> str:
    """``text`` with each found value replaced by a fixed mask: ``****`` and the value's last four digits (an
    identity number's last character may be ``X``), or ``****@`` and the domain of an e-mail address. The mask
    does not keep the value's length or format."""
    parts: list[str] = []
    position = 0
    for start, end, kind in found:
        value = text[start:end]
        kept = value[value.index("@") :] if kind == EMAIL else value.translate(_SEPARATORS)[-4:]
        parts += (text[position:start], "****" + kept)
        position = end
    parts.append(text[position:])
    return "".join(parts)
