"""The one rule for every table and column name a world takes from YAML.

Names leave the engine as file names (``<table>.csv`` in the run directory) and as SQL
identifiers in SQLite, PostgreSQL and DuckDB. A name that obeys this rule is the same
file and the same identifier everywhere, needs no quoting, and cannot reach outside the
run's directory or into a statement: lower-case letters, digits and ``_``, starting with
a letter or ``_``; at most 63 characters (PostgreSQL's NAMEDATALEN - 1: a longer name is
silently truncated, so two long names could become one table); not a reserved word of
any of the three databases; and one table per name across the world.

Stage parsers declare each name with the config path that gave it
(:meth:`Names.table`, :meth:`Names.column`, on ``ParseContext.names``);
:func:`simulator.load.load_spec` declares whatever a stage writes that its parser did
not (a stage kind of your own), then :meth:`Names.check` reports every broken name with
the world's other problems.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import Problems

MAX_LENGTH = 63
PATTERN = re.compile(r"[a-z_][a-z0-9_]*")
RULE = "lower-case letters, digits and _, starting with a letter or _, at most 63 characters"

# PostgreSQL 15's reserved key words: the "reserved" column of the manual's appendix C,
# both "reserved" and "reserved (can be function or type)", as the server lists them:
# SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T')
POSTGRES = frozenset({
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
    "authorization", "binary", "both", "case", "cast", "check", "collate", "collation",
    "column", "concurrently", "constraint", "create", "cross", "current_catalog",
    "current_date", "current_role", "current_schema", "current_time", "current_timestamp",
    "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
    "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having",
    "ilike", "in", "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral",
    "leading", "left", "like", "limit", "localtime", "localtimestamp", "natural", "not",
    "notnull", "null", "offset", "on", "only", "or", "order", "outer", "overlaps", "placing",
    "primary", "references", "returning", "right", "select", "session_user", "similar", "some",
    "symmetric", "table", "tablesample", "then", "to", "trailing", "true", "union", "unique",
    "user", "using", "variadic", "verbose", "when", "where", "window", "with"
})

# SQLite 3.40's keywords that cannot be identifiers. SQLite lets most of its 147 keywords
# (sqlite3_keyword_name) stand as names where the parser can tell; these are the ones
# refused unquoted as a column name in CREATE TABLE and SELECT ... WHERE ... ORDER BY, or
# as a table name in CREATE TABLE and SELECT ... FROM.
SQLITE = frozenset({
    "add", "all", "alter", "and", "as", "autoincrement", "between", "case", "cast", "check",
    "collate", "commit", "constraint", "create", "default", "deferrable", "delete", "distinct",
    "drop", "else", "escape", "except", "exists", "foreign", "from", "group", "having", "if",
    "in", "index", "insert", "intersect", "into", "is", "isnull", "join", "limit", "not",
    "nothing", "notnull", "null", "on", "or", "order", "primary", "raise", "references",
    "returning", "select", "set", "table", "then", "to", "transaction", "union", "unique",
    "update", "using", "values", "when", "where"
})

# DuckDB 1.x / 2.0's reserved keywords, SELECT keyword_name FROM duckdb_keywords() WHERE
# keyword_category = 'reserved', and the 'type_function' keywords that it refuses unquoted
# as a column or table name (CREATE TABLE t (left INTEGER) fails). Frozen here so that the
# rule does not depend on the installed driver.
DUCKDB = frozenset({
    "all", "analyse", "analyze", "and", "anti", "any", "array", "as", "asc", "asof",
    "asymmetric", "at", "authorization", "binary", "both", "by", "case", "cast", "check",
    "collate", "collation", "column", "concurrently", "constraint", "create", "cross",
    "default", "deferrable", "desc", "describe", "distinct", "do", "else", "end", "except",
    "false", "fetch", "for", "foreign", "freeze", "from", "full", "glob", "group", "having",
    "ilike", "in", "initially", "inner", "intersect", "into", "is", "isnull", "join", "lambda",
    "lateral", "leading", "left", "like", "limit", "natural", "not", "notnull", "null",
    "offset", "on", "only", "or", "order", "outer", "overlaps", "pivot", "pivot_longer",
    "pivot_wider", "placing", "positional", "primary", "qualify", "references", "returning",
    "right", "select", "semi", "show", "similar", "some", "summarize", "symmetric", "table",
    "tablesample", "then", "to", "trailing", "true", "union", "unique", "unpack", "unpivot",
    "using", "variadic", "verbose", "when", "where", "window", "with"
})

DATABASES = (("PostgreSQL", POSTGRES), ("SQLite", SQLITE), ("DuckDB", DUCKDB))
RESERVED = POSTGRES | SQLITE | DUCKDB

# Tables every run makes besides the world's own: a world table of the same name would
# overwrite it (or be overwritten) in the database.
RUN_TABLES = {"predictions": "the database's predictions table (schema/predictions.sql), which evaluate fills"}


def _shown(name: object) -> str:
    """The name as a message shows it: quoted, and cut short if it is long."""
    text = repr(name)
    return text if len(text) <= 80 else f"{text[:60]}...'"


def problem(name: object, what: str = "column") -> str | None:
    """Why ``name`` cannot be a ``what`` (table | column) name, or None when it can."""
    if not isinstance(name, str) or not PATTERN.fullmatch(name):
        return f"{_shown(name)} is not a valid {what} name ({RULE})"
    if len(name) > MAX_LENGTH:
        return f"{_shown(name)} is not a valid {what} name ({RULE}): it has {len(name)}"
    if name in RESERVED:
        where = [db for db, words in DATABASES if name in words]
        listed = where[0] if len(where) == 1 else f"{', '.join(where[:-1])} and {where[-1]}"
        return f"{name!r} is a reserved word in {listed}; choose another name"
    return None


@dataclass(frozen=True)
class Declared:
    """One name and the config path that gave it."""

    path: str
    name: object
    what: str                                  # table | column
    note: str = ""                             # what the name is, when the path alone does not say


@dataclass
class Names:
    """The world's table and column names as the parsers declare them, checked together."""

    declared: list[Declared] = field(default_factory=list)

    def table(self, path: str, name: object, note: str = "") -> None:
        """Declare a table name given at ``path``."""
        self._add(Declared(path, name, "table", note))

    def column(self, path: str, name: object, note: str = "") -> None:
        """Declare a column name given at ``path`` (or made from what ``path`` gives)."""
        self._add(Declared(path, name, "column", note))

    def keys(self, path: str, decls: object, what: str = "column") -> None:
        """Declare every key of the mapping at ``path`` (an open mapping of user-named
        columns) whose declaration is not null (null leaves a name out)."""
        if isinstance(decls, Mapping):
            for name, decl in decls.items():
                if decl is not None:
                    self._add(Declared(f"{path}.{name}", str(name), what))

    def _add(self, entry: Declared) -> None:
        if entry not in self.declared:
            self.declared.append(entry)

    def under(self, group: str, name: object, what: str) -> bool:
        """Whether group ``group`` already declared ``name`` as a ``what``."""
        return any(d.name == name and d.what == what and (d.path == group or d.path.startswith((f"{group}.", f"{group}[")))
                   for d in self.declared)

    def check(self, p: Problems) -> None:
        """Add a problem for every name that breaks the rule, and for every table name
        given twice (compared as PostgreSQL keeps them: the first 63 characters)."""
        reported: set[object] = set()
        for d in self.declared:
            reason = problem(d.name, d.what)
            # a name once, at the first path that gave it; a path once (a type's two columns)
            if reason and not {(repr(d.name), d.what), d.path} & reported:
                reported |= {(repr(d.name), d.what), d.path}
                p.add(d.path, reason + (f"; {d.note}" if d.note else ""))
        first: dict[str, Declared] = {}
        for d in (d for d in self.declared if d.what == "table" and isinstance(d.name, str)):
            key = d.name[:MAX_LENGTH]
            if key in RUN_TABLES:
                p.add(d.path, f"{_shown(d.name)} is {RUN_TABLES[key]}; choose another table name")
            elif key in first and first[key].path != d.path:
                same = "" if first[key].name == d.name else f" once cut to {MAX_LENGTH} characters"
                p.add(d.path, f"{_shown(d.name)} is also the table of {first[key].path}{same}; "
                              f"every table needs its own name")
            first.setdefault(key, d)
