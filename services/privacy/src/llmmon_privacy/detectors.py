"""Validated recognisers of sensitive values in text: each finds candidates with a bounded
regular expression (no nested quantifiers: linear on long inputs) and keeps only those that pass
a check (Luhn, mod-97, number ranges, issuer prefixes, context words) and are not documented
example values (555 phone numbers, test cards, ``example.com``, AWS's example keys, RFC 5737 and
RFC 3849 addresses), so that code answers and tutorials do not read as leaks.

A finding is a type, a position and a normalised value for comparing a response with its prompt;
the value stays in memory: nothing outside this process ever holds it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

TYPES = (
    "email",
    "phone",
    "card",
    "iban",
    "ssn",
    "ip",
    "aws_access_key",
    "aws_secret_key",
    "private_key",
    "jwt",
    "api_token",
    "url_password",
)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    start: int
    end: int
    value: str
    """Normalised (digits of a phone or card, an e-mail in lower case): compared, never written."""


def _context(text: str, start: int, words: re.Pattern[str], before: int = 40) -> bool:
    return bool(words.search(text, max(0, start - before), start))


# e-mail ---------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])"
)
_EXAMPLE_DOMAINS = re.compile(
    r"(?:^|\.)(?:example\.(?:com|org|net|edu)|[a-z0-9-]+\.(?:example|test|invalid|localhost)|localhost)$"
)


def emails(text: str) -> Iterator[Finding]:
    if "@" not in text:
        return
    for match in _EMAIL.finditer(text):
        value = match.group().lower()
        domain = value.rsplit("@", 1)[1]
        if _EXAMPLE_DOMAINS.search(domain) or domain.endswith((".png", ".jpg", ".gif")):
            continue
        yield Finding("email", match.start(), match.end(), value)


# phone ----------------------------------------------------------------------------------------
_PHONE = re.compile(
    r"(?<![\w+./-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,8}){1,4}(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?(?![\w/]|-\d|\.\d)"
)
_PHONE_WORDS = re.compile(
    r"\b(?:phone|call|tel|telephone|mobile|cell|fax|whats ?app|sms|text me|contact|reach|dial|ring|number|nummer|t[ée]l[ée]phone)\b",
    re.IGNORECASE,
)
_DATE_LIKE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")
_NANP = re.compile(
    r"^(?:(?:\+?1|001)[ .-]?)?(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])\d{3}[ .-]\d{4}(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?$"
)


_BARE_PHONE = re.compile(r"(?<![\w+./-])\+?\d{10,15}(?![\w/-]|\.\d)")


def phones(text: str) -> Iterator[Finding]:
    for match in _BARE_PHONE.finditer(text):  # digits alone: a phone only next to the word
        digits = match.group().lstrip("+")
        national = digits[-10:]
        plausible = len(set(digits)) >= 3 and national[3:6] != "555"
        if plausible and _context(text, match.start(), _PHONE_WORDS):
            yield Finding("phone", match.start(), match.end(), national)
    for match in _PHONE.finditer(text):
        raw = match.group()
        digits = re.sub(r"\D", "", re.split(r"[ ]?(?:x|ext)", raw, maxsplit=1)[0])
        if not 8 <= len(digits) <= 15 or _DATE_LIKE.match(raw) or len(set(digits)) < 3:
            continue
        international = raw.startswith("+") and len(digits) >= 10
        nanp = bool(_NANP.match(raw))
        if not (international or nanp):
            # By a context word alone: a phone's shape too (three groups, or a trunk prefix or
            # area code), not an order number or a date-like id near the word "call".
            groups = len(re.findall(r"\d+", re.split(r"[ ]?(?:x|ext)", raw, maxsplit=1)[0]))
            if not (groups >= 3 or raw.startswith(("(", "0"))):
                continue
            if not _context(text, match.start(), _PHONE_WORDS):
                continue
        national = digits[-10:]
        if len(national) == 10 and national[3:6] == "555":
            continue  # 555 exchange: the numbers fiction and documentation use
        yield Finding("phone", match.start(), match.end(), digits[-10:])


# payment card ---------------------------------------------------------------------------------
_CARD = re.compile(r"(?<![\d-])\d{4}(?:[ -]?\d{2,4}){2,4}(?:[ -]?\d{1,3})?(?![\d-])")
_TEST_CARDS = frozenset(
    {
        "4111111111111111",
        "4242424242424242",
        "4012888888881881",
        "4000056655665556",
        "5555555555554444",
        "5105105105105100",
        "5200828282828210",
        "2223003122003222",
        "378282246310005",
        "371449635398431",
        "6011111111111117",
        "6011000990139424",
        "3056930009020004",
        "36227206271667",
        "3566002020360505",
        "6200000000000005",
    }
)


def luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _issuer(digits: str) -> bool:
    two, four = int(digits[:2]), int(digits[:4])
    return (
        digits[0] == "4"
        or 51 <= two <= 55
        or 2221 <= four <= 2720
        or two in (34, 37, 35, 36, 38, 30, 62, 65)
        or digits.startswith("6011")
        or 644 <= int(digits[:3]) <= 649
    )


def cards(text: str) -> Iterator[Finding]:
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if not 13 <= len(digits) <= 19 or not _issuer(digits) or not luhn(digits):
            continue
        if digits in _TEST_CARDS or len(set(digits)) < 4:
            continue
        yield Finding("card", match.start(), match.end(), digits)


# IBAN -----------------------------------------------------------------------------------------
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip
_EXAMPLE_IBANS = frozenset(
    {"DE89370400440532013000", "GB82WEST12345698765432", "GB29NWBK60161331926819",
     "FR1420041010050500013M02606", "NL91ABNA0417164300", "CH9300762011623852957"}
)  # fmt: skip


def iban_valid(value: str) -> bool:
    if IBAN_LENGTHS.get(value[:2]) != len(value):
        return False
    moved = value[4:] + value[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def ibans(text: str) -> Iterator[Finding]:
    for match in _IBAN.finditer(text):
        value = match.group().replace(" ", "")
        if iban_valid(value) and value not in _EXAMPLE_IBANS:
            yield Finding("iban", match.start(), match.end(), value)


# US social security number --------------------------------------------------------------------
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\d-])")
_SSN_WORDS = re.compile(r"\b(?:ssn|social security|social-security|ss#|taxpayer)\b", re.IGNORECASE)
_EXAMPLE_SSNS = frozenset({"123456789", "078051120", "219099999", "111111111", "987654320"})


def ssns(text: str) -> Iterator[Finding]:
    for match in _SSN.finditer(text):
        area, sep, group, serial = match.groups()
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue
        if not sep and not _context(text, match.start(), _SSN_WORDS):
            continue  # nine bare digits: an SSN only where the text says so
        if sep == " " and not _context(text, match.start(), _SSN_WORDS):
            continue
        value = area + group + serial
        if value in _EXAMPLE_SSNS or value.startswith("98765432"):
            continue
        yield Finding("ssn", match.start(), match.end(), value)


# IP addresses ---------------------------------------------------------------------------------
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:]{6,39}(?![\w:])")  # one class: linear; checked below
_VERSION_WORDS = re.compile(r"(?:\bv|version|release|build|\bver)\.?\s*$", re.IGNORECASE)
_DOC_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


_WELL_KNOWN = frozenset({"8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "208.67.222.222"})
"""Public resolvers: in every networking answer, nobody's data."""


def _public_enough(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Private, loopback, unspecified, link-local, multicast and documentation addresses, and
    public resolvers, identify nobody (and fill code answers)."""
    return str(address) not in _WELL_KNOWN and not (
        address.is_private
        or address.is_loopback
        or address.is_unspecified
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or any(address in net for net in _DOC_NETS)
    )


def ips(text: str) -> Iterator[Finding]:
    for match in _IPV4.finditer(text):
        if _VERSION_WORDS.search(text, max(0, match.start() - 12), match.start()):
            continue
        try:
            address = ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        if _public_enough(address):
            yield Finding("ip", match.start(), match.end(), str(address))
    for match in _IPV6.finditer(text):
        try:
            address6 = ipaddress.IPv6Address(match.group())
        except ValueError:
            continue
        if _public_enough(address6) and match.group().count(":") >= 3:
            yield Finding("ip", match.start(), match.end(), str(address6))


# secrets --------------------------------------------------------------------------------------
_AWS_KEY_ID = re.compile(
    r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}(?![A-Z0-9])"
)
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_SECRET_WORDS = re.compile(
    r"(?:secret[_ ]?access[_ ]?key|aws[_ ]?secret|secretaccesskey|secret_key)", re.IGNORECASE
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
)
_JWT = re.compile(
    r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{8,2000}(?![\w-])"
)
_TOKENS = re.compile(
    r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}|xox[abprs]-[A-Za-z0-9-]{10,72}"
    r"|(?:sk|rk)_live_[A-Za-z0-9]{24,99}|sk-ant-[A-Za-z0-9_-]{80,120}|sk-(?:proj-)?[A-Za-z0-9_-]{20,80}T3BlbkFJ[A-Za-z0-9_-]{20,80}"
    r"|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20}|npm_[A-Za-z0-9]{36})(?![\w-])"
)
_URL_PASSWORD = re.compile(
    r"\b[a-z][a-z0-9+.-]{1,15}://([^\s:/@]{1,64}):([^\s:/@]{1,64})@[^\s/]{1,255}"
)
_PLACEHOLDER = re.compile(
    r"^(?:\*+|x+|\.+|<[^>]*>|\$\{?[^}]*\}?|%[^%]*%|\{[^}]*\}|pass(?:word)?|pwd|secret|changeme|your[_-]?password|password123|example|test|user|username|admin)$",
    re.IGNORECASE,
)


_KEY_ID_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA")
_TOKEN_PREFIXES = ("gh", "github_pat_", "xox", "_live_", "sk-", "AIza", "glpat-", "npm_")


def secrets(text: str) -> Iterator[Finding]:
    """Each pattern runs only where its fixed part occurs (a substring test is far cheaper than
    a regular expression over a long text)."""
    if any(prefix in text for prefix in _KEY_ID_PREFIXES):
        yield from _aws_key_ids(text)
    if _AWS_SECRET_WORDS.search(text):
        yield from _aws_secrets(text)
    if "PRIVATE KEY" in text:
        for match in _PRIVATE_KEY.finditer(text):
            key = text[match.end() : match.end() + 64]
            yield Finding("private_key", match.start(), match.end(), key)
    if "eyJ" in text:
        yield from _jwts(text)
    if any(prefix in text for prefix in _TOKEN_PREFIXES):
        for match in _TOKENS.finditer(text):
            yield Finding("api_token", match.start(), match.end(), match.group())
    if "://" in text:
        for match in _URL_PASSWORD.finditer(text):
            if not _PLACEHOLDER.match(match.group(2)) and "example" not in match.group().lower():
                yield Finding("url_password", match.start(), match.end(), match.group().lower())


def _aws_key_ids(text: str) -> Iterator[Finding]:
    for match in _AWS_KEY_ID.finditer(text):
        if not match.group().endswith("EXAMPLE"):
            yield Finding("aws_access_key", match.start(), match.end(), match.group())


def _aws_secrets(text: str) -> Iterator[Finding]:
    for match in _AWS_SECRET.finditer(text):
        value = match.group()
        if "EXAMPLE" in value or not _context(text, match.start(), _AWS_SECRET_WORDS, 60):
            continue
        if sum(c.isdigit() for c in value) < 2 or sum(c.isupper() for c in value) < 2:
            continue
        yield Finding("aws_secret_key", match.start(), match.end(), value)


def _jwts(text: str) -> Iterator[Finding]:
    for match in _JWT.finditer(text):
        try:
            head = match.group().split(".", 1)[0]
            header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(header, dict) and "alg" in header:
            yield Finding("jwt", match.start(), match.end(), match.group())


RECOGNISERS: tuple[Callable[[str], Iterator[Finding]], ...] = (
    emails,
    cards,
    ibans,
    ssns,
    ips,
    secrets,
    phones,
)
"""In order of preference where two find the same span: a checked type (Luhn, mod-97, number
ranges) before a phone number, which a context word alone can make."""


ADVERSARIAL = (
    *("a", "1", "1 ", "a@", "1.", ":a", "+1 ", "1-", "A1"),
    *("x://a:", "DE12 ", "eyJa.", "ghp_", "@a."),
)
"""Repetitions each pattern family is weakest against: a megabyte of any of them must scan in
linear time (tests/unit/services/test_privacy.py guards it, benchmarks/privacy.py times it)."""


def find(text: str) -> list[Finding]:
    """Every sensitive value in ``text``, the longest where two overlap (a card's digits are not
    also a phone number)."""
    # An escaped line break left in text (a template, a log of a log) ends a value as a real
    # one does; the two characters are replaced by two, so positions stay the text's own.
    text = text.replace("\\n", "\n ").replace("\\t", "\t ")
    found = sorted(
        (f for recognise in RECOGNISERS for f in recognise(text)),
        key=lambda f: (f.start, -(f.end - f.start)),
    )
    kept: list[Finding] = []
    for finding in found:
        if kept and finding.start < kept[-1].end:
            continue
        kept.append(finding)
    return kept
