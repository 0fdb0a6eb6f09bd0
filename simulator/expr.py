"""A small safe expression language for derived columns and rules.

Expressions are Python-looking strings parsed with ``ast`` and compiled from a whitelist
of node kinds into closures over whole columns: comparisons (chained too), ``and``/``or``/
``not``, arithmetic, ``x if cond else y``, ``in [..]``, constants, column names and the
functions in :data:`FUNCTIONS`. Attributes, subscripts, lambdas, comprehensions and any
other call are refused. Nothing is ever passed to ``eval``.

>>> e = compile_expr("payment_delay_flag and days_since_last_interaction > 14")
>>> sorted(e.names)
['days_since_last_interaction', 'payment_delay_flag']
"""
from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

Env = Mapping[str, object]
Fn = Callable[[Env], object]


def _round(x, decimals=0):
    return np.round(x, int(decimals))


FUNCTIONS: dict[str, Callable] = {
    "min": np.minimum,
    "max": np.maximum,
    "abs": np.abs,
    "log": np.log,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "clip": np.clip,
    "where": np.where,
    "round": _round,
    "floor": np.floor,
    "isnull": pd.isna,
}

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_CONSTANT_NAMES = {"true": True, "false": False, "True": True, "False": False}
GRAMMAR = ("column names, numbers, strings, true/false, + - * / // % **, comparisons, "
           "and/or/not, 'x if c else y', 'col in [..]', and the functions "
           + ", ".join(sorted(FUNCTIONS)))


class ExprError(ValueError):
    """An expression that is not valid in the safe grammar."""


MAX_LENGTH = 4_000          # characters of an expression (a longer one is refused, unparsed)
MAX_DEPTH = 60              # nesting of the parsed tree
MAX_EXPONENT = 1_000        # |exponent| of a power of constants, folded at compile time


def _excerpt(source: str) -> str:
    return source if len(source) <= 80 else source[:77] + "..."


def _depth(node: ast.AST, limit: int) -> int:
    """Nesting depth of ``node``, counted without recursion (a deep tree must not crash)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(current))
    return deepest


@dataclass(frozen=True)
class Expr:
    """A compiled expression: its source, the columns it reads, and the evaluator."""

    source: str
    names: frozenset[str]
    _fn: Fn

    def __call__(self, env: Env) -> object:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._fn(env)


def _isin(values, options):
    if isinstance(values, pd.Categorical):
        return np.asarray(values.isin(options))
    return np.isin(values, options)


class _Compiler:
    def __init__(self, source: str):
        self.source = source
        self.names: set[str] = set()
        self.constants: dict[int, object] = {}

    def fail(self, node: ast.AST, what: str) -> ExprError:
        return ExprError(f"{what} is not allowed in '{_excerpt(self.source)}' (allowed: {GRAMMAR})")

    def compile(self, node: ast.AST) -> Fn:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.fail(node, f"'{_excerpt(ast.unparse(node))}' ({type(node).__name__})")   # (a part can be long)
        return method(node)

    def _Expression(self, node: ast.Expression) -> Fn:
        return self.compile(node.body)

    def _Constant(self, node: ast.Constant) -> Fn:
        if not isinstance(node.value, (int, float, str, bool)):
            raise self.fail(node, f"the constant {node.value!r}")
        value = node.value
        return lambda env: value

    def _Name(self, node: ast.Name) -> Fn:
        if node.id in _CONSTANT_NAMES:
            value = _CONSTANT_NAMES[node.id]
            return lambda env: value
        if node.id.startswith("_"):
            raise self.fail(node, f"the name '{node.id}'")
        name = node.id
        self.names.add(name)
        return lambda env: env[name]

    def _UnaryOp(self, node: ast.UnaryOp) -> Fn:
        arg = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: np.logical_not(arg(env))
        if isinstance(node.op, ast.USub):
            return lambda env: -arg(env)
        if isinstance(node.op, ast.UAdd):
            return arg
        raise self.fail(node, f"the operator in '{ast.unparse(node)}'")

    def _BinOp(self, node: ast.BinOp) -> Fn:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(node, f"the operator in '{ast.unparse(node)}'")
        left, right = self.compile(node.left), self.compile(node.right)
        if isinstance(node.op, ast.Pow):
            exponent = self._constant(node.right)
            if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and abs(exponent) > MAX_EXPONENT:
                raise ExprError(f"the exponent {exponent:.6g} is too large (at most {MAX_EXPONENT}) in "
                                f"'{_excerpt(self.source)}'")
        a, b = self._constant(node.left), self._constant(node.right)
        if a is not None and b is not None:    # constants fold now, in floats: bounded cost
            try:
                value = op(float(a), float(b)) if not isinstance(a, str) and not isinstance(b, str) else op(a, b)
            except (OverflowError, ZeroDivisionError, TypeError, ValueError, MemoryError) as exc:
                raise ExprError(f"'{ast.unparse(node)[:60]}' cannot be computed ({type(exc).__name__}) in "
                                f"'{_excerpt(self.source)}'") from None
            if isinstance(value, str) and len(value) > MAX_LENGTH:
                raise ExprError(f"a string of {len(value):,} characters in '{_excerpt(self.source)}'")
            self.constants[id(node)] = value
            return lambda env: value
        return lambda env: op(left(env), right(env))

    def _constant(self, node: ast.AST) -> object:
        """The value of a constant (sub-)expression already folded, else None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self._constant(node.operand)
            return -inner if isinstance(inner, (int, float)) else None
        return self.constants.get(id(node))

    def _BoolOp(self, node: ast.BoolOp) -> Fn:
        parts = [self.compile(v) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

        def fn(env):
            out = np.asarray(parts[0](env), dtype=bool)
            for part in parts[1:]:
                out = combine(out, np.asarray(part(env), dtype=bool))
            return out

        return fn

    def _Compare(self, node: ast.Compare) -> Fn:
        operands = [self.compile(node.left)]
        ops: list[Callable] = []
        for op, comparator in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(comparator, (ast.List, ast.Tuple)):
                    raise self.fail(comparator, "'in' with anything but a literal list")
                options = [self._literal(e) for e in comparator.elts]
                negate = isinstance(op, ast.NotIn)
                ops.append(lambda a, _o, opts=options, neg=negate:
                           np.logical_not(_isin(a, opts)) if neg else _isin(a, opts))
                operands.append(lambda env: None)
                continue
            fn = _CMPOPS.get(type(op))
            if fn is None:
                raise self.fail(node, f"the comparison in '{ast.unparse(node)}'")
            ops.append(fn)
            operands.append(self.compile(comparator))

        def evaluate(env):
            values = [o(env) for o in operands]
            out = None
            for i, op in enumerate(ops):
                part = np.asarray(op(values[i], values[i + 1]), dtype=bool)
                out = part if out is None else np.logical_and(out, part)
            return out

        return evaluate

    def _literal(self, node: ast.AST):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
                and isinstance(node.operand, ast.Constant):
            return -node.operand.value
        raise self.fail(node, f"'{ast.unparse(node)}' inside an 'in' list (constants only)")

    def _IfExp(self, node: ast.IfExp) -> Fn:
        cond, yes, no = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda env: np.where(np.asarray(cond(env), dtype=bool), yes(env), no(env))

    def _Call(self, node: ast.Call) -> Fn:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(node, f"the call '{ast.unparse(node.func)}(...)'")
        if node.keywords:
            raise self.fail(node, "keyword arguments")
        fn = FUNCTIONS[node.func.id]
        args = [self.compile(a) for a in node.args]
        return lambda env: fn(*(a(env) for a in args))


def compile_expr(source: str) -> Expr:
    """Parse ``source`` in the safe grammar; raise :class:`ExprError` if it is not valid."""
    if not isinstance(source, str) or not source.strip():
        raise ExprError(f"an expression must be a non-empty string, got {source!r}")
    if len(source) > MAX_LENGTH:
        raise ExprError(f"an expression of {len(source):,} characters is too long (at most {MAX_LENGTH:,}): "
                        f"'{_excerpt(source)}'")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        why = exc.msg if isinstance(exc, SyntaxError) else "nested too deeply"
        raise ExprError(f"'{_excerpt(source)}' is not a valid expression ({why})") from None
    if _depth(tree, MAX_DEPTH) > MAX_DEPTH:
        raise ExprError(f"'{_excerpt(source)}' is nested too deeply (at most {MAX_DEPTH} levels)")
    compiler = _Compiler(source)
    fn = compiler.compile(tree)
    return Expr(source=source, names=frozenset(compiler.names), _fn=fn)


def frame_env(frame: pd.DataFrame, names=None) -> dict[str, object]:
    """A table's columns as an expression environment (labels stay categorical, so that
    comparisons with their categories work): all columns, or those in ``names``."""
    return {c: (frame[c].array if isinstance(frame[c].dtype, pd.CategoricalDtype) else frame[c].to_numpy())
            for c in (frame.columns if names is None else names)}


def evaluate(expr: Expr, env: Env, n: int) -> np.ndarray:
    """Evaluate over ``n`` rows, broadcasting constants to a full column."""
    value = expr(env)
    if isinstance(value, pd.Categorical):
        return value
    arr = np.asarray(value)
    return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr
