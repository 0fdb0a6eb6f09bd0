"""Moved to :mod:`simulator.review.learnability` (the review family); this name stays for
``grading.py`` and notebooks."""
from .review.learnability import auc, feature_aucs  # noqa: F401
