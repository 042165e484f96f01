"""``llmmon new service NAME``: write a new metric service's folder the way the others are built.

What it writes (the recipe in docs/deploying.md, "Adding a service"):

- ``services/NAME/pyproject.toml``: the package ``llmmon-NAME``, its entry point under
  ``[project.entry-points."llmmon.services"]`` (how infra, the local stack, the demo, ``score``,
  ``cost`` and ``capacity`` find it), and its dependency on the shared package;
- ``services/NAME/src/llmmon_NAME/``: ``spec.py`` (the declaration: metrics, alarms, scoring
  cost, memory), ``compute.py`` (pure scoring: records in, metric values out, no I/O) and
  ``handler.py`` (the Lambda entry point: the shared pipeline with that scorer);
- ``tests/unit/services/test_NAME.py`` (the scorer) and ``tests/infra/test_NAME_service.py`` (the
  Pulumi program deploys it: queue, dead-letter queue, function, alarms per model);
- the two lines of the root ``pyproject.toml`` that add it to the workspace, then ``uv lock``.

The service it writes works as written (the share of empty answers, and answer length in words):
replace ``compute.py`` and the declaration with your metric, keeping the shape.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from llmmon.errors import CliError

NAME = re.compile(r"^[a-z][a-z0-9]{1,23}$")


@dataclass(frozen=True)
class Names:
    service: str

    @property
    def package(self) -> str:
        return f"llmmon_{self.service}"

    @property
    def distribution(self) -> str:
        return f"llmmon-{self.service}"

    @property
    def camel(self) -> str:
        return self.service[0].upper() + self.service[1:]


def _python_string(text: str, indent: int) -> str:
    """A string literal that keeps to the linter's 100 columns: one piece, or a parenthesised
    concatenation of pieces."""
    if len(text) + indent + 20 <= 100:
        return json.dumps(text)
    pieces = textwrap.wrap(text, 100 - indent - 12, drop_whitespace=False)
    pad = " " * (indent + 4)
    return "(\n" + "".join(f"{pad}{json.dumps(p)}\n" for p in pieces) + " " * indent + ")"


def _imports(*lines: str) -> str:
    """First-party imports in the order the linter wants them (by module: the service's own
    package sorts before or after llmmon_shared by its name)."""
    return "".join(f"{line}\n" for line in sorted(lines, key=lambda line: line.split()[1]))


def _pyproject(n: Names, description: str) -> str:
    return f'''[project]
name = "{n.distribution}"
version = "0.1.0"
description = "{description}"
requires-python = ">=3.11"
dependencies = [
    # Add "llmmon-shared[vectors]" (numpy) only if the service embeds: the zip carries it.
    "llmmon-shared",
]

[project.entry-points."llmmon.services"]
{n.service} = "{n.package}.spec:SERVICE"

[tool.uv.sources]
llmmon-shared = {{ workspace = true }}

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{n.package}"]
'''


def _spec(n: Names, description: str) -> str:
    return f'''"""The {n.service} service's declaration.

Read by the Pulumi program, the local stack, the demo, ``llmmon score``, ``cost`` and
``capacity``. Metric names are global in the namespace: keep them distinct from every other
service's."""

from __future__ import annotations

from llmmon_shared.metrics import Unit
from llmmon_shared.spec import AlarmSpec, Comparison, MetricSpec, ScoringCost, ServiceSpec

SERVICE = ServiceSpec(
    name="{n.service}",
    description={_python_string(description, 4)},
    handler="{n.package}.handler.lambda_handler",
    metrics=(
        # An alarm reads it: in the default (lean) set and a column of every per-model table.
        MetricSpec(
            "{n.camel}EmptyAnswer",
            Unit.NONE,
            "1 when the answer has no words (Average = the share of empty answers)",
            binary=True,
        ),
        # No alarm reads it: opt-in detail (LLMMON_DETAIL_METRICS, detailMetrics in the stack).
        MetricSpec("{n.camel}AnswerWords", Unit.COUNT, "Words of the answer"),
    ),
    alarms=(
        AlarmSpec(
            "High{n.camel}EmptyAnswers",
            metric="{n.camel}EmptyAnswer",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.05,
            description="The share of empty answers is high",
        ),
    ),
    # CPU-seconds per interaction of the whole pipeline, per backend: what `llmmon capacity`
    # sizes the function from. Measure it (`uv run python benchmarks/capacity.py`) and write
    # the figure and the CPU it was measured on here.
    scoring=ScoringCost({{"local": 0.0002}}, measured_on="not yet measured"),
    memory_mb=256,
)
'''


def _compute(n: Names) -> str:
    return f'''"""Pure scoring for the {n.service} service.

One record in, its metric values out: no I/O, no AWS client, no logging of text (prompts and
answers are user data)."""

from __future__ import annotations

from collections.abc import Sequence

from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores


def scores(interaction: Interaction) -> Scores:
    words = len(interaction.completion.split())
    return {{"{n.camel}EmptyAnswer": float(words == 0), "{n.camel}AnswerWords": float(words)}}


def score_batch(batch: Sequence[Interaction]) -> list[Scores]:
    """The pipeline hands records in batches (a model may score a batch at once)."""
    return [scores(item) for item in batch]
'''


def _handler(n: Names) -> str:
    return f'''"""Lambda entry point of the {n.service} service.

The shared pipeline (SQS batch, S3 log objects, checkpoints, idempotency, metric sink) with this
service's scorer."""

from __future__ import annotations

{
        _imports(
            "from llmmon_shared.logs import S3Reader",
            "from llmmon_shared.metrics import MetricSink",
            "from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry",
            "from llmmon_shared.settings import ServiceSettings",
            f"from {n.package}.compute import score_batch",
            f"from {n.package}.spec import SERVICE",
        )
    }

class {n.camel}Settings(ServiceSettings):
    service: str = "{n.service}"


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start; the local worker and `llmmon score` call it too."""
    return build_pipeline(
        SERVICE.name,
        score_batch,
        SERVICE.units,
        {n.camel}Settings(),
        s3,
        sink,
        detail=SERVICE.detail_metrics,
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
'''


def _unit_test(n: Names) -> str:
    return f'''"""The {n.service} service's scorer, on typed records (no I/O)."""

from __future__ import annotations

{
        _imports(
            "from llmmon_shared.extract import Interaction",
            f"from {n.package}.compute import score_batch",
            f"from {n.package}.spec import SERVICE",
        )
    }

def interaction(answer: str) -> Interaction:
    return Interaction(
        request_id="r-1",
        model_id="amazon.titan-text-express-v1",
        operation="InvokeModel",
        family="titan",
        prompt="Where is Paris?",
        completion=answer,
    )


def test_an_empty_answer_counts_and_a_real_one_does_not() -> None:
    empty, real = score_batch([interaction("  "), interaction("In France, on the Seine.")])
    assert empty == {{"{n.camel}EmptyAnswer": 1.0, "{n.camel}AnswerWords": 0.0}}
    assert real == {{"{n.camel}EmptyAnswer": 0.0, "{n.camel}AnswerWords": 5.0}}


def test_every_value_is_a_declared_metric() -> None:
    declared = {{metric.name for metric in SERVICE.metrics}}
    for values in score_batch([interaction(""), interaction("Yes.")]):
        assert set(values) <= declared
'''


def _infra_test(n: Names) -> str:
    return f'''"""The Pulumi program deploys the {n.service} service (Pulumi mocks, offline)."""

from __future__ import annotations

{
        _imports(
            "from llmmon_infra.config import StackConfig",
            f"from {n.package}.spec import SERVICE",
            "from tests.infra.conftest import run_stack",
        )
    }
MODELS = ("anthropic.claude-3-haiku-20240307-v1:0",)


def test_queue_dead_letter_queue_function_and_alarms_per_model() -> None:
    config = StackConfig(stack="test", models=MODELS, alarm_emails=("oncall@example.com",))
    stack = run_stack(config, {{SERVICE.name: SERVICE}})
    queues = {{q["name"] for q in stack.inputs("aws:sqs/queue:Queue")}}
    assert {{"llmmon-test-{n.service}", "llmmon-test-{n.service}-dlq"}} <= queues
    (function,) = stack.inputs("aws:lambda/function:Function")
    assert function["handler"] == SERVICE.handler
    alarms = {{a["name"] for a in stack.inputs("aws:cloudwatch/metricAlarm:MetricAlarm")}}
    for alarm in SERVICE.alarms:
        assert any(alarm.name in name for name in alarms), alarm.name
'''


def _add_to_workspace(root: Path, n: Names) -> None:
    """The root pyproject.toml: the service among the workspace's dependencies and sources."""
    path = root / "pyproject.toml"
    text = path.read_text()
    dependencies = re.search(r"(?ms)^\[project\].*?^dependencies = \[\n(.*?)^\]", text)
    sources = re.search(r"(?ms)^\[tool\.uv\.sources\]\n(.*?)(?=^\[|\Z)", text)
    if not dependencies or not sources:
        raise CliError(f"{path}: no [project] dependencies or [tool.uv.sources] to add to")
    text = (
        text[: dependencies.end(1)]
        + f'    "{n.distribution}",\n'
        + text[dependencies.end(1) : sources.end(1)].rstrip("\n")
        + f"\n{n.distribution} = {{ workspace = true }}\n"
        + ("\n" if text[sources.end(1) :] else "")
        + text[sources.end(1) :]
    )
    path.write_text(text)


def new_service(root: Path, name: str, description: str, lock: bool, uv: str | None) -> int:
    if not NAME.match(name):
        raise CliError(
            f"service name {name!r}: 2-24 lower-case letters and digits, starting with a letter"
        )
    n = Names(name)
    folder = root / "services" / name
    from llmmon_shared.spec import discover

    if folder.exists() or name in discover() or name in discover("llmmon.scheduled"):
        raise CliError(f"a service named {name} exists already ({folder})")
    description = description.replace('"', "'")
    files = {
        folder / "pyproject.toml": _pyproject(n, description),
        folder / "src" / n.package / "__init__.py": f'"""llmmon {name} service."""\n',
        folder / "src" / n.package / "py.typed": "",
        folder / "src" / n.package / "spec.py": _spec(n, description),
        folder / "src" / n.package / "compute.py": _compute(n),
        folder / "src" / n.package / "handler.py": _handler(n),
        root / "tests" / "unit" / "services" / f"test_{name}.py": _unit_test(n),
        root / "tests" / "infra" / f"test_{name}_service.py": _infra_test(n),
    }
    for path in files:
        if path.exists():
            raise CliError(f"{path} exists already: nothing written")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _add_to_workspace(root, n)
    print(
        f"wrote services/{name}/ (pyproject.toml, spec.py, compute.py, handler.py) and its tests:"
    )
    for path in files:
        print(f"  {path.relative_to(root)}")
    print("added it to the workspace in pyproject.toml")
    if lock:
        if not uv:
            raise CliError("uv lock needs uv: run `sh scripts/dev.sh lock`, then set up")
        subprocess.run([uv, "lock"], cwd=root, check=True)
        print("uv.lock updated")
    else:
        print("next: sh scripts/dev.sh lock")
    print(
        "then: sh scripts/dev.sh setup (installs it), sh scripts/dev.sh test; edit spec.py and "
        "compute.py for your metric and measure its cost with benchmarks/capacity.py"
    )
    return 0
