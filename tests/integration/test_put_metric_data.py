"""PutMetricDataSink against moto's CloudWatch: the datums it builds are accepted and readable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from moto import mock_aws

from llmmon_shared.metrics import MetricPoint, PutMetricDataSink, Unit


@mock_aws
def test_values_and_counts__round_trip_through_cloudwatch() -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    dims = (("ModelId", "anthropic.claude-v2"),)
    sink = PutMetricDataSink("llmmon/test", client)
    sink.add(MetricPoint("Refusal", v, Unit.NONE, dims, now) for v in [1, 0, 0, 0, 1, 0, 0, 0])
    sink.flush()
    stats = client.get_metric_statistics(
        Namespace="llmmon/test",
        MetricName="Refusal",
        Dimensions=[{"Name": "ModelId", "Value": "anthropic.claude-v2"}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=60,
        Statistics=["Average", "SampleCount", "Sum"],
    )
    (point,) = stats["Datapoints"]
    assert point["SampleCount"] == 8
    assert point["Sum"] == 2
    assert point["Average"] == 0.25
