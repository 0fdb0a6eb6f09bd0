"""Moved to :mod:`simulator.review.stats` (the review family); ``run.py`` calls ``build``
through this name."""
from .review.stats import build  # noqa: F401
