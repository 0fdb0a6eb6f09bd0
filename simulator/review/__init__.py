"""The review family: what a run says about itself, beside the data it writes.

Stages generate and check; what the review needs they hand over as plain records
(``review/data.py``, the one module of this package a stage imports): declared targets
beside realized values and headline measures (``Reviewed.review``), and figure
specifications (``Reviewed.figures``). Here those records become stats.json
(``review/stats.py``: the miss rules, the measures, column summaries) and report.html
(``review/report.py``: the page; ``review/figures.py``: one drawing per figure kind).
``review/learnability.py`` holds the rank AUCs. Nothing here is imported by a stage, and
this file imports nothing, so that importing ``review.data`` stays light.
"""
