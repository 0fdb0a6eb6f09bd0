"""The safe expression grammar: what it accepts, what it refuses."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.expr import ExprError, compile_expr, evaluate

ENV = {
    "x": np.array([-0.6, -0.2, 0.1, np.nan]),
    "n": np.array([0, 3, 5, 20]),
    "flag": np.array([True, False, True, True]),
    "region": pd.Categorical(["Brazil", "EU", "UK", "Brazil"]),
}


@pytest.mark.parametrize("source, expected", [
    ("-0.5 < x < 0", [False, True, False, False]),            # chained; NaN compares False
    ("flag and n > 4", [False, False, True, True]),
    ("flag or n == 3", [True, True, True, True]),
    ("not flag", [False, True, False, False]),
    ("region == 'Brazil'", [True, False, False, True]),
    ("region in ['EU', 'UK']", [False, True, True, False]),
    ("region not in ['EU']", [True, False, True, True]),
    ("min(n, 3) * 2", [0, 6, 6, 6]),
    ("n / 2 + 1", [1.0, 2.5, 3.5, 11.0]),
    ("1 if flag else 0", [1, 0, 1, 1]),
    ("where(n > 4, n, 0)", [0, 0, 5, 20]),
    ("isnull(x)", [False, False, False, True]),
    ("round(n / 3, 1)", [0.0, 1.0, 1.7, 6.7]),
    ("2", [2, 2, 2, 2]),                                      # constants broadcast
])
def test_accepted(source, expected):
    got = evaluate(compile_expr(source), ENV, 4)
    assert np.asarray(got).tolist() == expected


def test_names_are_the_columns_read():
    assert compile_expr("payment_delay_flag and days > 14 and true").names == {"payment_delay_flag", "days"}


@pytest.mark.parametrize("source, fragment", [
    ("x.__class__", "Attribute"),
    ("x[0]", "Subscript"),
    ("__import__('os').system('ls')", "call"),
    ("open('f')", "call 'open"),
    ("lambda: 1", "Lambda"),
    ("[i for i in x]", "ListComp"),
    ("_secret", "name '_secret'"),
    ("min(x, key=abs)", "keyword"),
    ("x in y", "literal list"),
    ("x in [y]", "constants only"),
    ("x @ x", "operator"),
    ("x is None", "comparison"),
    ("f'{x}'", "JoinedStr"),
    ("x = 1", "not a valid expression"),
    ("", "non-empty"),
])
def test_refused(source, fragment):
    with pytest.raises(ExprError) as info:
        compile_expr(source)
    assert fragment in str(info.value)
