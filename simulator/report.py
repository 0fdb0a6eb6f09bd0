"""Moved to :mod:`simulator.review.report` (the page) and :mod:`simulator.review.canvas`
(figure, image, html_table); ``run.py`` calls ``render`` and ``evaluate.py`` uses the page's
STYLE, figure, image and panel through this name."""
from .review.canvas import figure, html_table, image  # noqa: F401
from .review.report import STYLE, panel, render  # noqa: F401
