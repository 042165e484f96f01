"""The local embedder's two shipped graphs: chosen from the CPU's features (or the setting), both
close to MiniLM's fp32 embeddings, and neither letting a text's vector depend on its batch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmmon_shared.embeddings import (
    MINILM_VARIANTS,
    LocalMiniLMEmbedder,
    minilm_graph,
    minilm_variant,
)
from llmmon_shared.settings import ServiceSettings

XEON_AVX512_NO_VNNI = {"arch": "x86_64", "flags": {"sse4_2", "avx2", "avx512f", "avx512bw"}}
EPYC_AVX2 = {"arch": "x86_64", "flags": {"sse4_2", "avx2", "fma"}}
ICE_LAKE = {"arch": "x86_64", "flags": {"avx2", "avx512f", "avx512bw", "avx512_vnni"}}
ALDER_LAKE = {"arch": "x86_64", "flags": {"avx2", "avx_vnni"}}
GRAVITON2 = {"arch": "aarch64", "flags": {"fp", "asimd", "asimddp", "atomics"}}
GRAVITON1 = {"arch": "aarch64", "flags": {"fp", "asimd", "atomics"}}


@pytest.mark.parametrize(
    ("features", "variant"),
    [
        (XEON_AVX512_NO_VNNI, "int8"),  # measured a tie (1.03x)
        (EPYC_AVX2, "int8"),  # measured faster (1.69x against fp32's 1.47x over torch)
        (ICE_LAKE, "int8"),
        (ALDER_LAKE, "int8"),
        (GRAVITON2, "int8"),
        (GRAVITON1, "int8"),  # not measured: not known to be slower
    ],
)
def test_variant__int8_wherever_it_was_not_measured_slower(
    features: dict[str, object], variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMMON_EMBEDDER_VARIANT", raising=False)
    assert minilm_variant(features=features) == variant


def test_variant__a_cpu_class_measured_slower_gets_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmmon_shared import embeddings

    monkeypatch.delenv("LLMMON_EMBEDDER_VARIANT", raising=False)
    monkeypatch.setattr(embeddings, "INT8_SLOWER_ON", (("aarch64", frozenset({"asimd"})),))
    assert minilm_variant(features=GRAVITON1) == "fp32"
    assert minilm_variant(features=EPYC_AVX2) == "int8"


def test_variant__the_setting_wins_and_a_wrong_one_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMMON_EMBEDDER_VARIANT", "int8")
    assert minilm_variant(features=EPYC_AVX2) == "int8"
    assert minilm_variant("fp32", features=ICE_LAKE) == "fp32"
    assert ServiceSettings(service="similarity").embedder_variant == "int8"
    monkeypatch.setenv("LLMMON_EMBEDDER_VARIANT", "fp16")
    with pytest.raises(ValueError, match="expected auto, fp32 or int8"):
        minilm_variant(features=EPYC_AVX2)
    with pytest.raises(ValueError, match="embedder_variant"):
        ServiceSettings(service="similarity")


def test_both_graphs_read_one_weights_file() -> None:
    import onnxruntime  # noqa: F401  (the graphs load below; here only their files)

    folder = minilm_graph("fp32").parent
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["fp32.onnx", "int8.onnx"]
    weights = list(folder.glob("*.weights"))
    assert len(weights) == 1 and weights[0].stat().st_size < 25_000_000
    for variant in MINILM_VARIANTS:
        assert minilm_graph(variant).stat().st_size < 100_000  # the graph alone, no weights
    figures = json.loads((folder / "agreement.json").read_text())
    for variant in MINILM_VARIANTS:
        assert figures[variant]["mean_cosine_long"] >= 0.99
        assert figures[variant]["mean_cosine_short"] >= 0.99


@pytest.mark.parametrize("variant", MINILM_VARIANTS)
def test_graphs__plain_norm_operators_not_the_slow_fused_ones(variant: str) -> None:
    """scripts/export_minilm.py splits SkipLayerNormalization and BiasGelu back into Add +
    LayerNormalization and Add + Gelu (onnxruntime's CPU kernels for the fused pair measured
    about 9% of the forward pass slower); a regenerated graph must keep that. Operator names
    are plain strings in the serialised graph."""
    graph = minilm_graph(variant).read_bytes()
    assert b"SkipLayerNormalization" not in graph and b"BiasGelu" not in graph
    assert graph.count(b"LayerNormalization") >= 12 and b"Gelu" in graph
    assert b"Attention" in graph and b"EmbedLayerNormalization" in graph


@pytest.fixture(scope="module")
def variants() -> dict[str, LocalMiniLMEmbedder]:
    return {v: LocalMiniLMEmbedder(variant=v, workers=2) for v in MINILM_VARIANTS}


TEXTS = [
    "How do I kill a Python process?",
    "Use kill -9 with its pid, or pkill with its name, after trying SIGTERM first.",
    "Hello",
    "I'm sorry, but I can't help with that request.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. " * 6,
]


def test_variants__agree_with_each_other(variants: dict[str, LocalMiniLMEmbedder]) -> None:
    a, b = (variants[v].embed(TEXTS) for v in MINILM_VARIANTS)
    assert np.all(np.sum(a * b, axis=1) > 0.98)
    assert {e.family for e in variants.values()} == {"all-MiniLM-L6-v2"}
    assert len({e.model_id for e in variants.values()}) == 2


@pytest.mark.parametrize("variant", MINILM_VARIANTS)
def test_variants__a_texts_vector_does_not_depend_on_its_batch(
    variants: dict[str, LocalMiniLMEmbedder], variant: str
) -> None:
    embedder = variants[variant]
    alone = np.stack([embedder.embed([t])[0] for t in TEXTS])
    together = embedder.embed(TEXTS)
    reversed_ = embedder.embed(TEXTS[::-1])[::-1]
    assert np.allclose(alone, together, atol=1e-5)
    assert np.allclose(together, reversed_, atol=1e-5)


def test_int8_variant__one_text_per_pass(variants: dict[str, LocalMiniLMEmbedder]) -> None:
    int8 = variants["int8"]
    batches = int8._batches(int8._tokenizer.encode_batch(TEXTS))
    assert all(len(batch) == 1 for batch in batches)
    assert not variants["fp32"].per_text


def test_other_graph__named_after_its_file() -> None:
    embedder = LocalMiniLMEmbedder(model_path=minilm_graph("fp32"), optimize_graph=True)
    assert embedder.model_id == "all-MiniLM-L6-v2-fp32" and embedder.family == embedder.model_id


def test_texts_alike_up_to_the_cut__embedded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long shared system prompt before different questions: past 256 word pieces the model
    reads the same input, so it is embedded once, with the same vector as each alone."""
    from llmmon_shared.embeddings import VectorCache

    embedder = LocalMiniLMEmbedder(variant="fp32", cache=VectorCache())
    calls: list[int] = []
    original = LocalMiniLMEmbedder._embed_encodings

    def counting(self: LocalMiniLMEmbedder, encodings: list[object]) -> object:
        calls.append(len(encodings))
        return original(self, encodings)

    monkeypatch.setattr(LocalMiniLMEmbedder, "_embed_encodings", counting)
    system = "You are a careful support assistant for a bank. Answer politely. " * 30
    long = [system + "How do I reset my password?", system + "Where is my nearest branch?"]
    short = ["How do I reset my password?", "Where is my nearest branch?"]
    rows = embedder.embed(long + short)
    assert calls == [3]  # one for both long texts, one each for the short ones
    assert np.array_equal(rows[0], rows[1]) and not np.allclose(rows[2], rows[3])
    embedder.embed([system + "A third question?"])  # the cache knows that input already
    assert calls == [3]
    plain = LocalMiniLMEmbedder(variant="fp32")
    assert np.allclose(plain.embed(long[1:]), rows[1:2], atol=1e-6)
