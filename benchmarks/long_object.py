"""One long log object on the local stack, far more than one invocation scores: does it complete?

The similarity service alone (real MiniLM, embedding cache off), a 25 s function timeout (the
deadline stops work at 20 s), five receives before the dead-letter queue, one object of
``--records`` distinct interactions. Prints one JSON line: receives, continuations and deferred
messages, what reached the dead-letter queue, the values emitted against the records, the wall
time. Before hand-overs, such an object made progress on each of its five receives and then went
to the dead-letter queue with part of its values out.

Run: ``uv run python benchmarks/long_object.py [--records 12000]`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = [
    "river",
    "mountain",
    "signal",
    "harbour",
    "quiet",
    "engine",
    "lantern",
    "copper",
    "meadow",
    "planet",
    "garden",
    "orbit",
    "window",
    "forest",
    "marble",
    "thunder",
    "pocket",
    "silver",
    "ladder",
    "candle",
]
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def body(records: int, seed: int = 5) -> bytes:
    rng = random.Random(seed)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = []
    for n in range(records):
        prompt = " ".join(rng.choice(WORDS) for _ in range(12)) + "?"
        answer = " ".join(rng.choice(WORDS) for _ in range(40)) + "."
        lines.append(
            json.dumps(
                {
                    "schemaType": "ModelInvocationLog",
                    "timestamp": now,
                    "requestId": f"long-{n}",
                    "modelId": MODEL,
                    "input": {"inputBodyJson": {"inputText": prompt}},
                    "output": {"outputBodyJson": {"results": [{"outputText": answer}]}},
                }
            ).encode()
        )
    return gzip.compress(b"\n".join(lines) + b"\n")


def sum_of(cloudwatch: object, metric: str, dims: list[dict[str, str]], stat: str) -> float:
    points = cloudwatch.get_metric_statistics(  # type: ignore[attr-defined]
        Namespace="llmmon",
        MetricName=metric,
        Dimensions=dims,
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
        Period=3600,
        Statistics=[stat],
    )["Datapoints"]
    return float(sum(p[stat] for p in points))


def main(argv: list[str] | None = None) -> int:
    from llmmon.local.corpus import object_key
    from llmmon.local.endpoint import client
    from llmmon.local.stack import LocalConfig, LocalStack, put_log_objects, queue_depths
    from llmmon_shared.spec import discover

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=12_000)
    parser.add_argument("--timeout-s", type=int, default=25)
    parser.add_argument("--limit-s", type=int, default=900)
    args = parser.parse_args(argv)
    config = LocalConfig(
        prefix="long",
        visibility_timeout_s=2,
        batching_window_s=0.2,
        max_receive_count=5,
        function_timeout_s=args.timeout_s,
        extra_env={"LLMMON_EMBEDDING_CACHE": "0"},
    )
    stack = LocalStack(config, {"similarity": discover()["similarity"]})
    topology = stack.start()
    started = time.monotonic()
    try:
        key = object_key("bedrock", datetime.now(UTC), random.Random(1))
        put_log_objects(topology, [(key, body(args.records))])
        while time.monotonic() - started < args.limit_s:
            visible, in_flight, dlq = queue_depths(topology)["similarity"]
            if dlq or (not visible and not in_flight and time.monotonic() - started > 10):
                break
            time.sleep(1)
        wall = time.monotonic() - started
        cloudwatch = client("cloudwatch", topology.endpoint)
        model = [{"Name": "ModelId", "Value": MODEL}]
        service = [{"Name": "Service", "Value": "similarity"}]
        sqs = [{"Name": "QueueName", "Value": "long-similarity"}]
        received = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="NumberOfMessagesReceived",
            Dimensions=sqs,
            StartTime=datetime.now(UTC) - timedelta(hours=1),
            EndTime=datetime.now(UTC) + timedelta(hours=1),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        values = sum_of(cloudwatch, "PromptResponseSimilarity", model, "SampleCount")
        result = {
            "records": args.records,
            "values_emitted": int(values),
            "share_emitted": round(values / args.records, 4),
            "receives": int(sum(p["Sum"] for p in received)),
            "continuations": int(
                sum_of(
                    cloudwatch,
                    "Requeued",
                    [{"Name": "Reason", "Value": "continuation"}, *service],
                    "Sum",
                )
            ),
            "dead_letter_messages": queue_depths(topology)["similarity"][2],
            "wall_s": round(wall, 1),
        }
    finally:
        stack.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
