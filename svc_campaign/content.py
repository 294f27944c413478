"""Content compliance of templates and their rendering for one customer.

Compliance (checked when a template is saved, and again at each send with the current policy's extra
phrases): no prohibited investment-marketing claims (promised or guaranteed returns, 保本/保收益/稳赚 and the
like), a risk disclosure in the body when the template promotes a product, and no placeholder naming a level
3+ field. Placeholders: ``{{attribute.x}}``, ``{{feature.x}}``, ``{{tag.x}}``, ``{{event.x}}``, each with an
optional default after ``|`` (``{{attribute.nickname|客户}}``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from svc_campaign.profiles import profile_values
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2

# Claims the CSRC/SAC rules on securities and fund marketing forbid (promising returns or safety of principal).
# Traditional and mixed forms (穩賺不賠, 稳賺不赔, 零風险) are matched by folding the text to simplified first.
BUILT_IN_PROHIBITED = (
    "保本",
    "保收益",
    "保证收益",
    "承诺收益",
    "稳赚",
    "稳赚不赔",
    "只赚不赔",
    "包赚",
    "零风险",
    "无风险",
    "刚性兑付",
    "收益有保障",
    "收益有保证",
    "保证回报",
    "回报有保证",
    "承诺回报",
    "保证盈利",
    "保障本金",
    "本金保障",
    "本金有保障",
    "保证本金",
    "本金保证",
    "保证本息",
    "本息保障",
    "本金无忧",
    "稳定收益",
    "绝对收益",
    "翻倍",
    "guaranteed return",
    "guarantee return",
    "guaranteed profit",
    "guarantee profit",
    "guaranteed income",
    "guaranteed yield",
    "guaranteed principal",
    "risk-free",
    "riskless",
    "no risk",
    "zero risk",
    "principal guaranteed",
    "principal protected",
    "capital guaranteed",
    "capital protected",
)
# Risk disclosures that contain a prohibited phrase but deny it ("不保证收益" holds "保证收益"): they are required
# wording, not claims, and are taken out of the text before matching, unless a negation precedes them ("并非不保本",
# a double negation, claims principal protection). Only denials of a guarantee: "并非无风险" is still refused.
DISCLOSURES = (
    "不保证收益",
    "不保证最低收益",
    "不保证本金",
    "不保证本息",
    "不保证盈利",
    "不保证一定盈利",
    "不承诺收益",
    "不承诺保本",
    "不保本",
    "非保本",
)
_NEGATIONS = frozenset("不非没无否未勿别莫")
# Traditional characters of the phrases above (and of the default risk disclosure and common marketing words) with
# their simplified forms, from OpenCC's TSCharacters table, plus variant characters used to get round the check
# (夲 for 本, the Japanese forms 穏 険 証 収 対 絶, 〇 for 零). Only characters that occur in a phrase matter: text
# and phrases are folded alike, so a character missing here can only miss a match on a phrase that contains it
# (a policy's extra phrase in other characters: list its traditional form too).
_TRADITIONAL = "虧產産債兌剛隻迴場對幣並併憂報損無漲確穩絕絶証證諾謹財貨資賠賺贏輸銀險須鬚預額風"
_SIMPLIFIED = "亏产产债兑刚只回场对币并并忧报损无涨确稳绝绝证证诺谨财货资赔赚赢输银险须须预额风"
_VARIANTS = {"夲": "本", "穏": "稳", "険": "险", "収": "收", "対": "对", "〇": "零"}
# Combining marks left by NFKD ("rísk" → "ri\u0301sk"): accents do not hide a Latin phrase.
_COMBINING_RANGES = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
    (0x3099, 0x309A),
)
_COMBINING = "".join(f"{chr(first)}-{chr(last)}" for first, last in _COMBINING_RANGES)
_FOLD = {
    **{cp: None for first, last in _COMBINING_RANGES for cp in range(first, last + 1)},
    **str.maketrans(_TRADITIONAL, _SIMPLIFIED),
    **{ord(k): v for k, v in _VARIANTS.items()},
}
# Most texts hold none of these: str.translate (a dict lookup per character) runs only on one that does.
_FOLDABLE = re.compile(f"[{_COMBINING}{_TRADITIONAL}{''.join(_VARIANTS)}]")
DEFAULT_RISK_DISCLOSURE = "市场有风险，投资需谨慎"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\.([A-Za-z0-9_.\-]+)\s*(?:\|([^}]*))?\}\}")
PLACEHOLDER_SOURCES = frozenset({"attribute", "feature", "tag", "event"})
_TEXT_FIELDS = ("title", "body", "link")
# Double braces left once the placeholders are taken out: "{{nickname}}" would reach the customer as it is.
_STRAY_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{\{|\}\}")


def _default(match: re.Match[str]) -> str:
    return match.group(3) or ""


def prohibited_claim(text: str, extra_phrases: Iterable[str] = ()) -> str | None:
    """The first prohibited claim in ``text`` (a rendered message: profile and event values included), or None."""
    plain = _claim_reading(text)
    for phrase, normalised in _phrases(tuple(extra_phrases)):
        if normalised in plain:
            return phrase
    return None


@functools.lru_cache(maxsize=16)
def _phrases(extra_phrases: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # (phrase, normalised) by the policy's extra phrases: every rendered send asks with the same ones. A phrase of
    # no letters or digits ("！！") would match every text: it is left out.
    found = ((p, _normalise(p)) for p in (*BUILT_IN_PROHIBITED, *extra_phrases) if p.strip())
    return tuple((p, n) for p, n in found if n)


def _normalise(text: str) -> str:
    # Full-width forms, case, accents, traditional and variant characters, spacing, punctuation, symbols and invisible
    # format characters (category Cf: U+200B, U+200D, U+2060, U+FEFF ...) do not hide a phrase: "保 本", "保、本",
    # "保*本", "保\u200b本", "ＧＵＡＲＡＮＴＥＥＤ return", "rísk-free", "穩赚不赔", "保夲". Only letters and digits
    # are compared.
    text = unicodedata.normalize("NFKD", text).lower()
    if not text.isascii() and _FOLDABLE.search(text):
        text = text.translate(_FOLD)
    return _NOT_LETTER_OR_DIGIT.sub("", text)


_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")
_DISCLOSURE = re.compile(
    f"(?<![{''.join(sorted(_NEGATIONS))}])(?:{'|'.join(sorted(map(_normalise, DISCLOSURES), key=len, reverse=True))})"
)


def _claim_reading(text: str) -> str:
    """``text`` normalised, its risk disclosures taken out (a space: no phrase is read across one)."""
    return _DISCLOSURE.sub(" ", _normalise(text))


def discloses_risk(template: pb.Template, body: str | None = None) -> bool:
    """Whether ``body`` (default: the template's body as written) carries the template's risk disclosure. As
    written it must stand in literal text, whole between two placeholders: a placeholder's default
    (``{{attribute.slogan|市场有风险，投资需谨慎}}``) is replaced for a customer who has the value."""
    disclosure = _normalise(template.risk_disclosure.strip() or DEFAULT_RISK_DISCLOSURE)
    if body is not None:
        return disclosure in _normalise(body)
    return any(disclosure in _normalise(piece) for piece in PLACEHOLDER.split(template.body)[:: PLACEHOLDER.groups + 1])


@dataclass(frozen=True)
class Finding:
    code: str
    field: str
    excerpt: str
    message: str

    def to_proto(self) -> pb.ContentFinding:
        return pb.ContentFinding(code=self.code, field=self.field, excerpt=self.excerpt, message=self.message)


def check_template(
    template: pb.Template, extra_phrases: Iterable[str] = (), sensitive_fields: Iterable[str] = ()
) -> list[Finding]:
    """Every compliance problem of ``template`` (empty: compliant)."""
    findings: list[Finding] = []
    phrases = _phrases(tuple(extra_phrases))
    sensitive = {s.lower() for s in sensitive_fields}
    for field in _TEXT_FIELDS:
        text = getattr(template, field)
        if not text:
            continue
        # As written, and as it reads with every placeholder empty or at its default: "保{{attribute.x|}}本"
        # renders "保本" for a customer without the attribute.
        readings = {
            _claim_reading(text),
            _claim_reading(PLACEHOLDER.sub("", text)),
            _claim_reading(PLACEHOLDER.sub(_default, text)),
        }
        for phrase, normalised in phrases:
            # "无风险" inside the disclosure "并非无风险" is still a claim to avoid; a disclosure never needs it.
            if any(normalised in plain for plain in readings):
                findings.append(
                    Finding(
                        "prohibited_claim",
                        field,
                        phrase,
                        f"{field} contains the prohibited investment-marketing claim {phrase!r}",
                    )
                )
        # Empty and at their defaults: "{{{attribute.x|{}}" reads "{{" for a customer without the value. (A value's
        # braces are made inert when filled in: see _INERT_BRACES.)
        stray = _STRAY_PLACEHOLDER.search(PLACEHOLDER.sub("", text)) or _STRAY_PLACEHOLDER.search(
            PLACEHOLDER.sub(_default, text)
        )
        if stray:
            findings.append(
                Finding(
                    "unknown_placeholder",
                    field,
                    stray.group(0),
                    f"{field}: {stray.group(0)!r} is not a placeholder: write {{{{source.name}}}} or "
                    f"{{{{source.name|default}}}} with a source of {', '.join(sorted(PLACEHOLDER_SOURCES))}",
                )
            )
        for match in PLACEHOLDER.finditer(text):
            source, name = match.group(1), match.group(2)
            if source not in PLACEHOLDER_SOURCES:
                findings.append(
                    Finding(
                        "unknown_placeholder",
                        field,
                        match.group(0),
                        f"{field}: placeholder {match.group(0)!r} must start with one of "
                        f"{', '.join(sorted(PLACEHOLDER_SOURCES))}",
                    )
                )
            elif name.lower() in sensitive:
                findings.append(
                    Finding(
                        "sensitive_placeholder",
                        field,
                        match.group(0),
                        f"{field}: {name!r} is a level 3+ field and never goes into message text",
                    )
                )
    if template.HasField("product") and template.product.product_id:
        disclosure = template.risk_disclosure.strip() or DEFAULT_RISK_DISCLOSURE
        if not discloses_risk(template):
            findings.append(
                Finding(
                    "missing_risk_disclosure",
                    "body",
                    disclosure,
                    f"the template promotes product {template.product.product_id!r}: the body must carry the risk "
                    f"disclosure {disclosure!r} as literal text, outside any placeholder (a placeholder's default "
                    "is replaced for a customer who has the value)",
                )
            )
    return findings


class RenderRefused(Exception):
    """A placeholder would put a masked (level 3+) value into the text."""


def render_text(
    text: str,
    profile: profile_pb2.Profile | None,
    event: Mapping[str, Any],
    sensitive_fields: Iterable[str] = (),
) -> str:
    if PLACEHOLDER.search(text) is None:
        return text  # nothing to fill in: no profile values to gather
    return _filler(profile, event, sensitive_fields)(text)


def _filler(
    profile: profile_pb2.Profile | None, event: Mapping[str, Any], sensitive_fields: Iterable[str]
) -> Callable[[str], str]:
    values = profile_values(profile)
    masked = {m.split(".")[-1].lower() for m in profile.masked_fields} if profile is not None else set()
    sensitive = {s.lower() for s in sensitive_fields} | masked

    def substitute(match: re.Match[str]) -> str:
        source, name, default = match.group(1), match.group(2), match.group(3) or ""
        if name.lower() in sensitive:
            raise RenderRefused(f"{source}.{name} is a level 3+ field")
        found = event.get(name) if source == "event" else values.get(source, {}).get(name)
        if found is None or found == "":
            return default
        if isinstance(found, tuple):
            return ",".join(found).translate(_INERT_BRACES)
        if isinstance(found, float):
            return f"{found:g}"
        return str(found).translate(_INERT_BRACES)

    return lambda text: PLACEHOLDER.sub(substitute, text)


# A customer's or an event's value is filled in once and never expanded here; its braces become full-width (｛ ｝,
# read alike) so that a gateway or channel with templating of its own ({{x}}, {% %}, ${x}, {x}) cannot expand
# them either: "{{attribute.phone}}" in a nickname reaches the customer as "｛｛attribute.phone｝｝". A NUL is
# dropped: svc_collect keeps event text verbatim, and PostgreSQL's text refuses U+0000 (a message body holding one
# failed the log batch at every retry, stopping every journey, before 0.2.9).
_INERT_BRACES = str.maketrans({"{": "｛", "}": "｝", "\x00": None})


class TemplateFacts(NamedTuple):
    """What a send reads of its template, as plain values (see :func:`template_facts`)."""

    texts: tuple[str, str, str]
    """(title, body, link) as written."""
    fixed: bool
    """No placeholder in any of the texts: every customer gets them as they are."""
    template_id: str
    version: int
    product_id: str
    risk_level: int


def template_facts(template: pb.Template) -> TemplateFacts:
    """The template's :class:`TemplateFacts`, remembered for the last template object asked about: the sends of a
    batch ask about one cached template object (svc_campaign.sending) a few times each, and every protobuf field read
    makes a new Python object (0.15-0.25 µs). By the object itself, as the gate's compliance verdict is: a cached
    template is never changed in place (a new version is a new object)."""
    global _last_facts
    last = _last_facts
    if last is not None and last[0] is template:
        return last[1]
    texts = template.title, template.body, template.link
    fixed = _FIXED.get(texts)
    if fixed is None:
        if len(_FIXED) >= 1024:
            _FIXED.clear()
        fixed = _FIXED[texts] = not any(PLACEHOLDER.search(text) for text in texts)
    product = template.product
    found = TemplateFacts(texts, fixed, template.template_id, template.version, product.product_id, product.risk_level)
    _last_facts = (template, found)
    return found


_last_facts: tuple[pb.Template, TemplateFacts] | None = None


def render(
    template: pb.Template,
    profile: profile_pb2.Profile | None,
    event: Mapping[str, Any],
    sensitive_fields: Iterable[str] = (),
) -> tuple[str, str, str]:
    """(title, body, link) for one customer; ``RenderRefused`` when a level 3+ value would be shown."""
    facts = template_facts(template)
    texts = facts.texts
    if facts.fixed:
        return texts  # a fixed text (a send per customer: worth not gathering profile values)
    title, body, link = texts
    fill = _filler(profile, event, sensitive_fields)
    return fill(title), fill(body), fill(link)


_FIXED: dict[tuple[str, str, str], bool] = {}
"""Whether a template's (title, body, link) holds no placeholder, by the texts (every send of a batch renders one)."""

_RATING = re.compile(r"^[cC]\s*([1-5])$")


def risk_rating(profile: profile_pb2.Profile | None) -> int | None:
    """The customer's risk rating C1-C5 as 1-5 (attribute ``risk_rating``, or a tag of that name)."""
    if profile is None:
        return None
    values = profile_values(profile)
    raw = values["attribute"].get("risk_rating", values["tag"].get("risk_rating"))
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 5:
        return raw
    if isinstance(raw, str) and (m := _RATING.match(raw.strip())):
        return int(m.group(1))
    return None
