"""Cleaning of raw corpora before training and back-translation (fairseq-bt-clean)."""
from .config import CleanConfig  # noqa: F401
