"""Export all-MiniLM-L6-v2 to the embedder's two graphs; run by ``scripts/minilm_graphs.py`` in
the torch environment it sets up (torch, transformers, onnx, onnxruntime's offline tools).

1. Export the encoder (eager attention, so that onnxruntime's BERT optimiser recognises it) to
   ONNX in fp32, then fuse it: EmbedLayerNormalization, Attention, BiasGelu,
   SkipLayerNormalization (``onnxruntime.transformers.optimizer``); then split BiasGelu and
   SkipLayerNormalization back into their plain operators, whose CPU kernels are faster
   (``unfuse_norms``).
2. Quantise every large weight to int8, symmetric, one scale per output channel (per token for
   the word embeddings), and write the weights **once** to ``minilm-l6-v2.weights``.
3. Write two graphs over those same weights:

   * ``fp32.onnx``: each weight is Cast and Mul of its int8 tensor and scales. onnxruntime's
     constant folding turns them into fp32 initialisers at load, so every product runs in fp32
     (weight-only int8: only the weights carry the rounding);
   * ``int8.onnx``: the same, except that the MatMuls of the Q/K/V-free parts of each layer
     (attention output and FFN up-projection) quantise their input per batch
     (DynamicQuantizeLinear) and run MatMulInteger on the int8 weights. Attention and the FFN
     down-projections stay fp32: quantising them costs the most agreement (measured: mean
     cosine with torch 0.9939 without them, 0.9880 on short sentences with attention
     quantised).

4. Write torch's fp32 embeddings of ``--texts`` (mean pooling, L2 normalisation, 256 tokens, as
   sentence-transformers computes them) for the caller to check both graphs against.

Usage: ``python export_minilm.py --model MODEL_FOLDER --texts TEXTS.json --out FOLDER``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS = "minilm-l6-v2.weights"
MAX_TOKENS = 256


def export_fused(model_folder: Path, out: Path) -> Path:
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_folder), attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    plain = out / "plain.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Encoder(),
            (ids, ids, torch.zeros_like(ids)),
            str(plain),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    fused = optimize_model(
        str(plain), model_type="bert", num_heads=12, hidden_size=384, opt_level=0
    )
    counts = fused.get_fused_operator_statistics()
    wanted = {"EmbedLayerNormalization": 1, "Attention": 6, "SkipLayerNormalization": 12}
    for op, count in wanted.items():
        assert counts.get(op) == count, f"fusion incomplete: {op} {counts.get(op)}, want {count}"
    path = out / "fused.onnx"
    fused.save_model_to_file(str(path))
    plain.unlink()
    return path


def quantise(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per slice along ``axis`` kept (per output channel)."""
    reduce = tuple(i for i in range(weight.ndim) if i != axis)
    scale = np.abs(weight).max(axis=reduce, keepdims=True) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    q = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
    return q, scale if axis == 0 else scale.reshape(-1)


def unfuse_norms(nodes: list[Any]) -> list[Any]:
    """SkipLayerNormalization and BiasGelu back into Add + LayerNormalization and Add + Gelu:
    the same arithmetic (max difference 1.4e-6), but onnxruntime's CPU kernels for the fused
    pair are the slow ones. Measured per 240-token text on one thread (onnxruntime 1.32,
    AVX-512): SkipLayerNormalization 12.7 ms and BiasGelu 7.0 ms, against 10.3 ms for the
    Add, LayerNormalization and Gelu that replace them, about 9% of the forward pass.
    (Attention stays fused: MatMul + MultiHeadAttention measured no faster in the whole graph.)"""
    from onnx import helper

    out: list[Any] = []
    for node in nodes:
        if node.op_type == "SkipLayerNormalization":
            x, skip, gamma, beta, bias = node.input
            (y,) = node.output[:1]
            epsilon = next(a.f for a in node.attribute if a.name == "epsilon")
            out += [
                helper.make_node("Add", [x, bias], [f"{y}.biased"]),
                helper.make_node("Add", [f"{y}.biased", skip], [f"{y}.sum"]),
                helper.make_node(
                    "LayerNormalization", [f"{y}.sum", gamma, beta], [y], axis=-1, epsilon=epsilon
                ),
            ]
            assert all(not name for name in node.output[1:]), "a SkipLayerNorm extra output"
        elif node.op_type == "BiasGelu":
            x, bias = node.input
            (y,) = node.output
            out += [
                helper.make_node("Add", [x, bias], [f"{y}.biased"]),
                helper.make_node("Gelu", [f"{y}.biased"], [y], domain="com.microsoft"),
            ]
        else:
            out.append(node)
    return out


def build_graphs(fused_path: Path, out: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(fused_path))
    graph = model.graph
    unfused = unfuse_norms(list(graph.node))
    del graph.node[:]
    graph.node.extend(unfused)
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    # The weights to quantise: (initialiser, axis of its scales).
    targets: dict[str, int] = {}
    for node in graph.node:
        if node.op_type in ("MatMul", "Attention") and node.input[1] in inits:
            targets[node.input[1]] = 1
        elif node.op_type == "EmbedLayerNormalization":
            targets[node.input[2]] = 0  # word embeddings: one scale per token
    int8_matmuls = [
        n
        for n in graph.node
        if n.op_type == "MatMul"
        and n.input[1] in targets
        and ("attention/output/dense" in n.name or "intermediate/dense" in n.name)
    ]
    quantised: list[onnx.TensorProto] = []
    for name, axis in targets.items():
        q, scale = quantise(numpy_helper.to_array(inits[name]), axis)
        quantised += [
            numpy_helper.from_array(q, f"{name}.q"),
            numpy_helper.from_array(scale, f"{name}.s"),
        ]
    kept = [t for t in graph.initializer if t.name not in targets]

    def dequantise(name: str) -> list[onnx.NodeProto]:
        return [
            helper.make_node("Cast", [f"{name}.q"], [f"{name}.f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{name}.f", f"{name}.s"], [name]),
        ]

    def integer_matmul(node: onnx.NodeProto) -> list[onnx.NodeProto]:
        x, w = node.input
        y = node.output[0]
        p = node.name
        return [
            helper.make_node("DynamicQuantizeLinear", [x], [f"{p}.xq", f"{p}.xs", f"{p}.xz"]),
            helper.make_node("MatMulInteger", [f"{p}.xq", f"{w}.q", f"{p}.xz"], [f"{p}.i"]),
            helper.make_node("Cast", [f"{p}.i"], [f"{p}.if"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{p}.xs", f"{w}.s"], [f"{p}.scale"]),
            helper.make_node("Mul", [f"{p}.if", f"{p}.scale"], [y]),
        ]

    def graph_of(nodes: list[onnx.NodeProto], initialisers: list[onnx.TensorProto]) -> Any:
        g = helper.make_graph(
            nodes, "all-MiniLM-L6-v2", list(graph.input), list(graph.output), initialisers
        )
        m = helper.make_model(g, opset_imports=list(model.opset_import), producer_name="llmmon")
        m.ir_version = model.ir_version
        return m

    # fp32: every weight dequantised (folded at load).
    fp32_nodes = [n for name in targets for n in dequantise(name)] + list(graph.node)
    fp32 = graph_of(fp32_nodes, kept + quantised)
    for stale in ("fp32.onnx", "int8.onnx", WEIGHTS):
        (out / stale).unlink(missing_ok=True)
    onnx.save_model(
        fp32,
        str(out / "fp32.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS,
        size_threshold=1024,
    )
    # int8: the same initialisers, now references into the weights file written above.
    shared = list(onnx.load(str(out / "fp32.onnx"), load_external_data=False).graph.initializer)
    swapped = {n.name for n in int8_matmuls}
    fp32_weights = {name for name in targets if all(c.name not in swapped for c in consumers[name])}
    int8_nodes = [n for name in fp32_weights for n in dequantise(name)]
    for node in graph.node:
        int8_nodes += integer_matmul(node) if node.name in swapped else [node]
    onnx.save_model(graph_of(int8_nodes, shared), str(out / "int8.onnx"))
    for name in ("fp32.onnx", "int8.onnx"):
        onnx.checker.check_model(str(out / name))
    (out / WEIGHTS).chmod(0o644)
    print(
        f"{len(targets)} weights quantised; int8.onnx runs {len(swapped)} MatMuls in int8 "
        "(attention output and FFN up-projection of each layer)"
    )


def torch_reference(model_folder: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_folder))
    model = AutoModel.from_pretrained(str(model_folder)).eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), 32):
            batch = tokenizer(
                texts[start : start + 32],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
    return np.concatenate(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fused = export_fused(args.model, args.out)
    build_graphs(fused, args.out)
    fused.unlink()
    texts = json.loads(args.texts.read_text())
    np.save(args.out / "torch.npy", torch_reference(args.model, texts))


if __name__ == "__main__":
    main()
