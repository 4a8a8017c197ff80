"""Experiment files: one YAML file describes the data, languages and systems of a pipeline
run (``scripts/pipeline.sh FILE``); ``fairseq-bt-experiment`` reads it."""
from .config import ExperimentConfig  # noqa: F401
