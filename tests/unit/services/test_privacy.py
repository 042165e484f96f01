"""The privacy service's recognisers and its leak decision, on hand-written text: each type
found and validated, documented example values and ordinary numbers left alone, and the
patterns linear on long adversarial input. All values here are made up."""

from __future__ import annotations

import time

import pytest

from llmmon_privacy.compute import scan, score_batch
from llmmon_privacy.detectors import ADVERSARIAL, find, iban_valid, luhn
from llmmon_privacy.spec import SERVICE, type_metric
from llmmon_shared.extract import Interaction

FOUND = {
    "email": "Write to jane.doe@acme-corp.io about it.",
    "phone": "Call me on +44 20 7946 0958 tomorrow.",
    "card": "Charge card 4539 1488 0343 6467, expiry 12/27.",
    "iban": "Transfer to DE44 5001 0517 5407 3249 31 today.",
    "ssn": "My SSN is 536-22-1234.",
    "ip": "The server answers on 34.201.12.7 only.",
    "aws_access_key": "Key id AKIAZ3MSJV4WSZLXQ2AB in the config.",
    "aws_secret_key": "aws_secret_access_key = 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",
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA",
    "jwt": "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "api_token": "export GITHUB_TOKEN=ghp_Zx81kQ2mN7pL0vB4cX9sD3fG6hJ1kL5wE8rT",
    "url_password": "DATABASE_URL=postgres://app:Tr0ub4dor3@db.internal:5432/app",
}
NOT_SENSITIVE = [
    "Use user@example.com or admin@test.example in the docs.",
    "Call 212-555-0142 for the demo line.",  # the 555 exchange
    "In test mode use 4242 4242 4242 4242 and 4111 1111 1111 1111.",
    "The IBAN DE89 3704 0044 0532 0130 00 is the standard example.",
    "An SSN looks like 123-45-6789.",
    "Point it at 192.0.2.10, 127.0.0.1, 192.168.1.1, 8.8.8.8 or 2001:db8::1.",
    "AWS's documented key is AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
    "postgres://user:password@localhost/db and https://${USER}:${PASS}@host",
    # ordinary numbers in answers
    "Order 2024-000123 ships on 2024-01-15 at 10:30; tracking 1Z999AA10123456784.",
    "Upgrade from version 10.2.3.4 to 1.2.3 (build 20240115.3), it costs $1,299.99.",
    "The invoice total is 1 299 EUR, reference 4711 0815 1234, due 15.01.2025.",
    "Run `sleep 3600 && echo 1234567890` then check PID 31337 and port 8080.",
    "The population was 8 336 817 in 2019 and 8 804 190 in 2020.",
    "UUID 123e4567-e89b-12d3-a456-426614174000 and hash 9f86d081884c7d659a2feaa0c55ad015",
]


@pytest.mark.parametrize(("kind", "text"), FOUND.items())
def test_each_type_is_found(kind: str, text: str) -> None:
    assert [f.kind for f in find(text)] == [kind], find(text)


@pytest.mark.parametrize("text", NOT_SENSITIVE)
def test_examples_and_ordinary_numbers_are_not(text: str) -> None:
    assert find(text) == []


def test_checks__luhn_and_mod_97() -> None:
    assert luhn("4539148803436467") and not luhn("4539148803436468")
    assert iban_valid("DE44500105175407324931") and not iban_valid("DE44500105175407324932")
    assert not iban_valid("DE4450010517540732493")  # a German IBAN has 22 characters


def interaction(prompt: str, answer: str, **fields: object) -> Interaction:
    return Interaction("r-1", "m", "InvokeModel", "claude", prompt, answer, **fields)  # type: ignore[arg-type]


def test_a_leak_is_a_value_the_prompt_did_not_hold() -> None:
    echoed = interaction(
        "My e-mail is Jane.Doe@Acme-Corp.io, fix the typo.", "Use jane.doe@acme-corp.io."
    )
    produced = interaction(
        "Who handles billing?", "Write to billing.lead@acme-corp.io or call +1 415 867 5309."
    )
    reformatted = interaction("Call (415) 867-5309 back.", "I will call 415.867.5309 now.")
    from_a_tool = interaction(
        "What is the support address?",
        "It is help@acme-corp.io.",
        inserted="Contact: help@acme-corp.io",
    )
    leak = [scan(i).leaked for i in (echoed, produced, reformatted, from_a_tool)]
    assert [len(found) for found in leak] == [0, 2, 0, 0]
    echo_scores, produced_scores, *_ = score_batch([echoed, produced])
    assert echo_scores["SensitiveDataLeak"] == 0.0 and echo_scores["SensitiveDataInPrompt"] == 1.0
    assert produced_scores["SensitiveDataLeak"] == 1.0
    assert produced_scores[type_metric("email")] == produced_scores[type_metric("phone")] == 1.0
    assert set(produced_scores) <= {m.name for m in SERVICE.metrics}


def test_a_withheld_answer__the_prompt_scanned_no_answer_metrics() -> None:
    (scores,) = score_batch(
        [interaction("My card is 4539 1488 0343 6467", "", response_withheld=True)]
    )
    assert scores["SensitiveDataInPrompt"] == 1.0
    assert "SensitiveDataLeak" not in scores and "SensitiveDataInResponse" not in scores


def test_text_cut_off_is_counted_unscanned_not_clean() -> None:
    (scores,) = score_batch([interaction("Hi", "Hello", chars_cut=12_345)])
    assert scores["SensitiveDataCharsUnscanned"] == 12_345.0


@pytest.mark.parametrize(
    "unit",
    ADVERSARIAL,
)
def test_adversarial_megabyte__linear_time(unit: str) -> None:
    """A guard against catastrophic backtracking (which takes minutes, not seconds): 1 MB of each
    pattern's favourite repetition. The figure per record is benchmarks/privacy.py's."""
    text = unit * (1_000_000 // len(unit))
    started = time.perf_counter()
    find(text)
    assert time.perf_counter() - started < 10.0


def test_eval_pii__precision_recall_per_type(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    from pathlib import Path

    from llmmon.cli import main

    text = "Mail jane.doe@acme-corp.io or call (415) 867-5309; order 2024-000123."
    items = [
        {
            "full_text": text,
            "spans": [
                {"entity_type": "EMAIL_ADDRESS", "start_position": 5, "end_position": 26},
                {"entity_type": "PERSON", "start_position": 5, "end_position": 13},
                {"entity_type": "CREDIT_CARD", "start_position": 56, "end_position": 67},
            ],
        }
    ]
    path = Path(str(tmp_path)) / "pii.json"
    path.write_text(json.dumps(items))
    assert main(["eval", "pii", str(path)]) == 0
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])["per_type"]
    assert figures["email"] == {
        "tp": 1,
        "fp": 0,
        "fn": 0,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
    }
    assert figures["phone"]["fp"] == 1 and figures["phone"]["precision"] == 0.0  # not labelled
    assert figures["card"]["fn"] == 1 and figures["card"]["recall"] == 0.0
    assert "PERSON" not in out and "jane.doe" not in out  # other types unscored; no text shown
