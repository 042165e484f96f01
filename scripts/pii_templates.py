"""Labelled sentences for the privacy service: Presidio's sentence templates
(``../shared/data/pii/templates.csv``, MIT) filled with fake values made here, in the span format
``llmmon eval pii`` reads (``[{"full_text", "spans": [{"entity_type", "start_position",
"end_position"}]}]``). Values are random and valid (Luhn cards, mod-97 IBANs, SSNs in range,
public IPv4, phone numbers in the formats Faker writes); every other placeholder (names,
addresses, organisations, years, ages, dates, URLs) is filled with a plausible non-sensitive
value and is a source of false positives, not a labelled span.

Run: ``uv run python scripts/pii_templates.py --per-template 5 --out .bench/pii-templates.json``
then ``uv run llmmon eval pii .bench/pii-templates.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import string
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT.parent / "shared" / "data" / "pii" / "templates.csv"


def luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char)
        if index % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("37", 15), ("6011", 16)]
    )
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digits = body + luhn_digit(body)
    style = rng.choice(["plain", "spaces", "dashes"])
    if style == "plain" or length == 15:
        return digits
    sep = " " if style == "spaces" else "-"
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


def phone(rng: random.Random) -> str:
    area, exchange = rng.randint(201, 989), rng.randint(200, 999)
    while exchange == 555:
        exchange = rng.randint(200, 999)
    line = rng.randint(0, 9999)
    return rng.choice(
        [
            f"{area}-{exchange}-{line:04d}",
            f"({area}){exchange}-{line:04d}",
            f"({area}) {exchange}-{line:04d}",
            f"{area}.{exchange}.{line:04d}",
            f"+1-{area}-{exchange}-{line:04d}",
            f"001-{area}-{exchange}-{line:04d}x{rng.randint(1, 9999)}",
            f"{area}-{exchange}-{line:04d}x{rng.randint(1, 999)}",
            f"+44 20 {rng.randint(7000, 8999)} {rng.randint(1000, 9999)}",
            f"+49 30 {rng.randint(1000000, 9999999)}",
        ]
    )


def iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("ES", 24)])
    if country == "GB":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        bban += "".join(rng.choice(string.digits) for _ in range(14))
    elif country == "NL":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        bban += "".join(rng.choice(string.digits) for _ in range(10))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    value = f"{country}{check:02d}{bban}"
    return (
        " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.5 else value
    )


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 223) if i == 0 else rng.randint(0, 255)) for i in range(4))


def email(rng: random.Random) -> str:
    user = rng.choice(["john", "maria.lopez", "k.tanaka", "dev", "anna_b", "li.wei"])
    domain = rng.choice(["gmail.com", "yahoo.com", "acme-corp.io", "mail.de", "outlook.com"])
    return f"{user}{rng.randint(1, 99)}@{domain}"


LABELLED: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "credit_card_number": ("CREDIT_CARD", card),
    "phone_number": ("PHONE_NUMBER", phone),
    "iban": ("IBAN_CODE", iban),
    "ssn": ("US_SSN", ssn),
    "ip_address": ("IP_ADDRESS", ip),
    "email": ("EMAIL_ADDRESS", email),
}
FILLER = {
    "first_name": ["Maria", "John", "Wei", "Aisha"],
    "last_name": ["Lopez", "Smith", "Tanaka", "Okafor"],
    "organization": ["Acme Corp", "Globex", "Initech", "Umbrella Ltd"],
    "address": [
        "742 Evergreen Terrace, Springfield, OR 97403",
        "10 Downing Street, London SW1A 2AA",
    ],
    "city": ["Springfield", "Lyon", "Osaka", "Lagos"],
    "street_name": ["Evergreen Terrace", "Main Street", "Rue de Rivoli"],
    "country": ["France", "Japan", "Nigeria", "Canada"],
    "building_number": ["742", "10", "221B", "1600"],
    "age": ["34", "57", "21"],
    "secondary_address": ["Apt. 4B", "Suite 210", "Floor 3"],
    "nationality": ["French", "Japanese", "Nigerian"],
    "year": ["1987", "2003", "2019"],
    "postcode": ["97403", "SW1A 2AA", "75001"],
    "zipcode": ["97403", "10001", "94105"],
    "url": ["https://www.acme-corp.io/support", "http://globex.example/about"],
    "job": ["nurse", "software engineer", "teacher"],
    "date_of_birth": ["1987-03-14", "14/03/1987", "March 14, 1987"],
    "date_time": ["2024-01-15 10:30", "15.01.2024 10:30", "Jan 15, 2024 at 10:30"],
    "state_abbr": ["OR", "NY", "CA"],
    "day_of_week": ["Monday", "Friday"],
    "us_driver_license": ["D1234567", "S530-4401-7745"],
}


def fill(template: str, rng: random.Random) -> dict[str, object]:
    text, spans, at = "", [], 0
    for match in re.finditer(r"\{\{?(\w+)\}\}?", template):
        text += template[at : match.start()]
        name = match.group(1)
        if name in LABELLED:
            kind, make = LABELLED[name]
            value = make(rng)
            spans.append(
                {
                    "entity_type": kind,
                    "start_position": len(text),
                    "end_position": len(text) + len(value),
                }
            )
        else:
            key = next((k for k in FILLER if name.startswith(k) or name.endswith(k)), None)
            value = (
                rng.choice(FILLER[key])
                if key
                else rng.choice(["Maria Lopez", "John Smith", "Li Wei"])
            )
        text += value
        at = match.end()
    text += template[at:]
    return {"full_text": text, "spans": spans}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-template", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "pii-templates.json")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with TEMPLATES.open(encoding="utf-8", newline="") as handle:
        templates = [row["template"] for row in csv.DictReader(handle)]
    items = [fill(t, rng) for t in templates for _ in range(args.per_template)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(items, indent=1))
    labelled = sum(len(i["spans"]) for i in items)  # type: ignore[arg-type]
    print(f"{len(items)} sentences, {labelled} labelled spans -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
