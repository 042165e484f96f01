"""Personal-data and secret shapes never become dimension values, whatever their separators;
ordinary values (model, app and environment names, versions, dates) stay. Both sides, as a
table: a value added to one list documents a decision."""

from __future__ import annotations

import pytest

from llmmon_shared.metrics import DimensionRule, looks_personal

CARDS = [
    "4111111111111111",
    "4111-1111-1111-1111",
    "4111 1111 1111 1111",
    "4111_1111_1111_1111",
    "4111.1111.1111.1111",
    "4111:1111:1111:1111",
    "4111/1111/1111/1111",
    "4111,1111,1111,1111",
    "4111+1111+1111+1111",
    "5500-0000-0000-0004",
    "3400-000000-00009",
    "card-4111_1111_1111_1111",
]
SOCIAL_SECURITY = [
    "123456789",
    "123-45-6789",
    "123_45_6789",
    "123:45:6789",
    "123/45/6789",
    "123.45.6789",
    "123 45 6789",
    "123,45,6789",
    "123+45+6789",
    "ssn_123-45-6789",
]
PHONES = [
    "2025550143",
    "202-555-0143",
    "202/555/0143",
    "202.555.0143",
    "202_555_0143",
    "202:555:0143",
    "(202) 555-0143",
    "+1-202-555-0143",
    "+12025550143",
    "+44_20_7946_0958",
    "+44:20:7946:0958",
    "+44/20/7946/0958",
    "+44,20,7946,0958",
    "+44.20.7946.0958",
    "0044-20-7946-0958",
    "020-7946-0958",
    "+49-30-901820",
    "+33_1_42_68_53_00",
    "07700_900123",
    "555-0143",
    "555_0143",
    "555.0143",
    "555/0143",
    "555:0143",
    "tel-555-0143",
]
KEYS_AND_IDS = [
    "sk-proj-abcdefghijklmnop1234",
    "sk-ant-api03-abcdefghijklmnopqrst",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "sk-abcdefghijklmnopqrstuvwx",
    "rk_live_abcdefghijklmnopqr",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghij",
    "xoxb-123456789012-abcdefghij",
    "AIzaSyA-abcdefghijklmnopqrstuvwxyz12345",
    "hf_abcdefghijklmnopqrstuvwxyz",
    "glpat-abcdefghij1234567890",
    "AKIAIOSFODNN7EXAMPLE",
    "AKIAIOSFODNN7EXA",
    "ASIAY34FZKBOKMUTVV7A",
    "AIDAJQABLZS4A3QDU576Q",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
    "Zx8kQ2mN5pR7tV9wYb3D",
    "a1B2c3D4e5F6g7H8",
    "123e4567-e89b-12d3-a456-426614174000",
    "DE89370400440532013000",
    "alice@example.com",
    "arn:aws:iam::123456789012:user/alice",
    "ssn=123",
    "192.168.1.10",
    "10.0.0.1",
]
PERSONAL = CARDS + SOCIAL_SECURITY + PHONES + KEYS_AND_IDS

ORDINARY = [
    "support-bot",
    "search",
    "writer",
    "tutor",
    "customer-support-bot2",
    "checkout_v2",
    "prod",
    "eu-west-1",
    "us-east-1",
    "team-42",
    "tenant-acme",
    "cohort-b",
    "experiment_7",
    "web",
    "A/B",
    "bot/v1",
    "sk-support",
    "1.2.3",
    "v2.10.1",
    "2024.11.1",
    "3.11.7",
    "1.0.0-rc.1",
    "10.2.30",
    "ios-17.2",
    "android-14",
    "release-2026.11",
    "build-1234",
    "2026-11-28",
    "2026/11/28",
    "2026_11_28",
    "2026.11.28",
    "20261128",
    "28-11-2026",
    "11/28/2026",
    "2026-11-28T10:35:00Z",
    "2026-11-28T1035",
    "10:35:00",
    "2026-W48",
    "claude-3-5-sonnet-20241022-v2:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "gpt-4o-2024-08-06",
    "llama3-1-70b",
    "mistral-large-2407",
    "amazon.nova-pro-v1:0",
]


def test_the_tables_are_large_enough() -> None:
    assert len(PERSONAL) >= 60 and len(ORDINARY) >= 40


@pytest.mark.parametrize("value", PERSONAL)
def test_personal_shapes__recognised(value: str) -> None:
    assert looks_personal(value)
    # And so never a dimension value, even under a pattern that would match it.
    assert DimensionRule.parse("key~.+").admit(value) == "Other"


@pytest.mark.parametrize("value", ORDINARY)
def test_ordinary_values__stay(value: str) -> None:
    assert not looks_personal(value)
    assert DimensionRule.parse("key~.+").admit(value) == value
