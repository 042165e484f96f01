"""Lambda entry point: the shared pipeline with the similarity scorer."""

from __future__ import annotations

from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink
from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry
from llmmon_similarity.compute import SimilarityScorer
from llmmon_similarity.settings import SimilaritySettings, make_embedder, make_relevance
from llmmon_similarity.spec import SERVICE


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start: settings, clients and the embedding models."""
    settings = SimilaritySettings()
    relevance = make_relevance(settings)
    scorer = SimilarityScorer(make_embedder(settings, relevance), relevance)
    return build_pipeline(
        SERVICE.name, scorer, SERVICE.units, settings, s3, sink, detail=SERVICE.detail_metrics
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
