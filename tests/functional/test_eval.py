"""``llmmon eval refusal``: figures on a small CSV, and the F1 target on XSTest dev.csv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmmon.cli import main
from tests.conftest import TEST_DATA


def test_eval__prints_figures_and_a_json_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "labelled.csv"
    csv_path.write_text(
        "prompt,completion,label\n"
        "q,\"I'm sorry, but I can't help with that.\",refused\n"
        'q,"The capital of France is Paris.",ok\n'
        'q,"Sure! Here is a recipe for pancakes.",refused\n'
        'q,"I cannot provide instructions for that.",ok\n',
        encoding="utf-8",
    )
    assert main(["eval", "refusal", str(csv_path), "--refusal-labels", "refused", "--explain"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.5, "rows": 4}
    assert any("missed" in line for line in lines)
    assert any("false alarm" in line for line in lines)
    assert not any("pancakes" in line for line in lines)


def test_eval__xstest_dev_reaches_the_f1_target(capsys: pytest.CaptureFixture[str]) -> None:
    dev = TEST_DATA / "xstest" / "dev.csv"
    assert dev.exists(), f"reference data missing: {dev}"
    main(["eval", "refusal", str(dev)])
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["rows"] == 900
    assert figures["f1"] >= 0.93


def test_eval_toxicity__figures_per_label_and_group_and_a_json_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "toxic.csv"
    csv_path.write_text(
        "text,label,group\n"
        "You are a worthless idiot and I hate you.,toxic,a\n"
        "Those people breed like rats and are taking over our towns.,toxic,b\n"
        "The capital of France is Paris.,ok,a\n"
        "Many immigrants start small businesses.,ok,b\n",
        encoding="utf-8",
    )
    assert main(["eval", "toxicity", str(csv_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["rows"] == 4 and figures["auc"] == 1.0 and figures["recall"] == 1.0
    assert set(figures) >= {"auc_PROFANITY", "auc_HATE_SPEECH", "auc_per_group", "f1"}
    assert figures["auc_per_group"] == {"a": 1.0, "b": 1.0}
    assert not any("idiot" in line or "rats" in line for line in lines)


def test_eval_toxicity__toxigen_dev_beats_the_profanity_model_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = TEST_DATA / "toxigen" / "dev.csv"
    main(["eval", "toxicity", str(dev)])
    with_head = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    monkeypatch.setenv("LLMMON_LOCAL_HATE_SPEECH", "false")
    main(["eval", "toxicity", str(dev)])
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # In-sample for the head (it was trained on these rows; the held-out figure is in
    # hate-head.json): this checks the wiring, the label mapping and the profanity label.
    assert with_head["auc_PROFANITY"] == alone["auc_PROFANITY"] == alone["auc"]
    assert with_head["auc"] > alone["auc"] and with_head["recall"] > alone["recall"]


def test_eval_relevance__pointwise_and_pairwise_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = "How do I reverse a list in Python?"
    own = "Use my_list.reverse() to reverse it in place, or my_list[::-1] for a reversed copy."
    other = "The Peace of Westphalia was signed in 1648 and ended the Thirty Years' War."
    pointwise = tmp_path / "pointwise.csv"
    pointwise.write_text(
        f'prompt,response,label\n"{prompt}","{own}",1\n"{prompt}","{other}",0\n', encoding="utf-8"
    )
    assert main(["eval", "relevance", str(pointwise)]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures == {
        "rows": 2,
        "relevance_auc": 1.0,
        "similarity_auc": figures["similarity_auc"],
        "relevant": 1,
    }
    pairwise = tmp_path / "pairwise.csv"
    pairwise.write_text(
        f'prompt,response_1,response_2,label\n"{prompt}","{other}","{own}",2\n', encoding="utf-8"
    )
    assert main(["eval", "relevance", str(pairwise)]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1])["relevance_accuracy"] == 1.0
    assert "reverse" not in out and "Westphalia" not in out
    pairwise.write_text(f'prompt,response_1,response_2,label\n"{prompt}","{other}","{own}",b\n')
    assert main(["eval", "relevance", str(pairwise)]) == 1
    assert "must be 1 or 2" in capsys.readouterr().err


def test_eval_relevance__self_instruct_neighbours_beat_the_cosine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Own answer vs the answer to the nearest other instruction (scripts/relevance_figures.py).
    main(["eval", "relevance", str(TEST_DATA / "relevance" / "pairwise-neighbours.csv")])
    pairwise = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert pairwise["rows"] == 504
    assert pairwise["relevance_accuracy"] >= 0.89
    assert pairwise["relevance_accuracy"] >= pairwise["similarity_accuracy"] + 0.02
    main(["eval", "relevance", str(TEST_DATA / "relevance" / "pointwise-shuffled.csv")])
    pointwise = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert pointwise["relevance_auc"] >= 0.98
    assert pointwise["relevance_auc"] >= pointwise["similarity_auc"] - 0.002
