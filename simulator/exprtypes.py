"""Types of compiled expressions, checked when the config is loaded.

A ``when`` must be boolean and a ``value`` numeric; a string compared with a categorical
column (``==``, ``!=``, ``in [..]``) must be one of its categories; arithmetic and order
comparisons need numbers. The checker walks the same ``ast`` the compiler accepted, with
the world's column domains, so a mistake is refused with its config path before any
generation instead of silently matching nothing.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping

from .errors import Problems, did_you_mean
from .expr import _CONSTANT_NAMES, Expr
from .spec.model import Domain

NUMERIC = {"number", "bool", "any"}
EXPECTED = {"bool": "a boolean (a comparison, and/or/not, or a boolean column)",
            "number": "a number (arithmetic over numeric columns)"}


class _Checker:
    def __init__(self, path: str, source: str, domains: Mapping[str, Domain], p: Problems):
        self.path, self.source, self.domains, self.p = path, source, domains, p

    def add(self, what: str, hint: str = "") -> None:
        excerpt = self.source if len(self.source) <= 80 else self.source[:77] + "..."
        self.p.add(self.path, f"{what} in '{excerpt}'{hint}")

    def type(self, node: ast.AST) -> tuple[str, object]:
        """(kind, detail): kind is bool | number | str | category | datetime | any."""
        if isinstance(node, ast.Expression):
            return self.type(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return "bool", None
            return ("str", node.value) if isinstance(node.value, str) else ("number", None)
        if isinstance(node, ast.Name):
            if node.id in _CONSTANT_NAMES:
                return "bool", None
            dom = self.domains.get(node.id)
            if dom is None:
                return "any", None
            kind = {"bool": "bool", "int": "number", "float": "number", "category": "category",
                    "str": "str", "datetime": "datetime"}.get(dom.dtype, "any")
            return kind, (node.id, tuple(dom.categories or ())) if kind == "category" else None
        if isinstance(node, ast.UnaryOp):
            inner = self.type(node.operand)
            if isinstance(node.op, ast.Not):
                return "bool", None
            self._numeric(inner, "a sign")
            return "number", None
        if isinstance(node, ast.BinOp):
            for side in (node.left, node.right):
                self._numeric(self.type(side), "arithmetic")
            return "number", None
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self.type(v)
            return "bool", None
        if isinstance(node, ast.Compare):
            self._compare(node)
            return "bool", None
        if isinstance(node, ast.IfExp):
            self.type(node.test)
            yes, no = self.type(node.body), self.type(node.orelse)
            return yes if yes[0] == no[0] else ("number", None) if {yes[0], no[0]} <= NUMERIC else ("any", None)
        if isinstance(node, ast.Call):
            args = [self.type(a) for a in node.args]
            name = node.func.id if isinstance(node.func, ast.Name) else ""
            if name == "isnull":
                return "bool", None
            if name == "where" and len(args) == 3:
                yes, no = args[1], args[2]
                return yes if yes[0] == no[0] else ("number", None) if {yes[0], no[0]} <= NUMERIC else ("any", None)
            for a in args:
                self._numeric(a, f"{name}()")
            return "number", None
        return "any", None

    def _numeric(self, t: tuple[str, object], what: str) -> None:
        if t[0] not in NUMERIC:
            label = f"the {t[0]} column {t[1][0]!r}" if t[0] == "category" else f"a {t[0]}"
            self.add(f"{what} needs numbers, got {label}")

    def _compare(self, node: ast.Compare) -> None:
        left = self.type(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = [e.value for e in getattr(right_node, "elts", []) if isinstance(e, ast.Constant)]
                self._literals(left, [v for v in values if isinstance(v, str)])
                continue
            right = self.type(right_node)
            if isinstance(op, (ast.Eq, ast.NotEq)):
                for a, b in ((left, right), (right, left)):
                    if a[0] == "category" and b[0] == "str":
                        self._literals(a, [b[1]])
            else:
                for side in (left, right):
                    if side[0] in ("category", "str"):
                        self._numeric(side, "an order comparison")
            left = right

    def _literals(self, column: tuple[str, object], literals: list[str]) -> None:
        if column[0] != "category" or not column[1][1]:
            return
        name, categories = column[1]
        for lit in literals:
            if lit not in categories:
                self.add(f"{lit!r} is not a category of {name!r}", did_you_mean(lit, [str(c) for c in categories]))


def check(p: Problems, path: str, expr: Expr, expected: str | None, domains: Mapping[str, Domain]) -> None:
    """Add a problem at ``path`` when ``expr`` is not of the ``expected`` type (bool |
    number | None: any) or compares a categorical column with a string it never holds."""
    checker = _Checker(path, expr.source, domains, p)
    kind, _ = checker.type(ast.parse(expr.source.strip(), mode="eval"))
    if expected == "bool" and kind not in ("bool", "any"):
        checker.add(f"must be {EXPECTED['bool']}, got a {kind}")
    elif expected == "number" and kind not in NUMERIC:
        checker.add(f"must be {EXPECTED['number']}, got a {kind}")
