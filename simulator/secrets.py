"""Passwords never leave the process: the one place that hides them.

A database URL reaches the user's eyes through many doors: Hydra's ``--cfg`` print-out,
its saved ``.hydra/*.yaml`` and ``multirun.yaml``, the launcher's log lines, a crashing
job's echo of its overrides, argparse's errors, our own messages and ``manifest.json``.
Every door goes through :func:`mask`, which finds each URL in a text, parses it with
SQLAlchemy's ``make_url`` and renders it with ``hide_password=True``; query parameters
named ``password`` or ``sslpassword`` (any case) are hidden as well.

The guarantee: everything between the first ``:`` after ``scheme://`` and the *last*
``@`` of the URL is hidden. A raw ``@``, ``:`` or ``/`` inside a password therefore stays
hidden (``admin:p@ss:w/rd@host`` -> ``admin:***@host``); when the split is ambiguous the
mask hides too much (part of a host), never too little. In free text a URL ends at
whitespace or a quote, so a password holding one must be percent-encoded.
"""
from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, unquote

from sqlalchemy.engine import URL, make_url

HIDDEN = "***"
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})      # compared in lower case

# A URL inside free text: scheme://... up to whitespace, a quote or an angle bracket.
# Hydra escapes ':' (and ' ', ',', '=' ...) with a backslash when it echoes an override;
# an escaped pair never ends the URL, so an escaped space inside a password stays inside.
_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*\\*:\\*//(?:\\.|[^\s'"`<>\\])+""")
_HYDRA_SPECIAL = re.compile(r"[()\[\]{}:=, \t]")
_HYDRA_ESCAPE = re.compile(r"\\+(?=[()\[\]{}:=, \t])")
# A secret query value, hidden before the userinfo is looked for (a '@' in it must not
# count); Hydra's echo writes its '=' as '\='.
_SECRET_QUERY = re.compile(rf"([?&;](?:{'|'.join(sorted(SECRET_QUERY_KEYS))})\\*=)[^&;#]*", re.IGNORECASE)


def _split(url: str) -> tuple[str, str | None, str | None, str]:
    """(scheme, user, password, rest) of ``scheme://user:password@rest``, the userinfo
    ending at the last '@' (user and password None when there is no userinfo)."""
    scheme, _, after = url.partition("://")
    if after.startswith("/") or "@" not in after:             # sqlite:///path: no authority
        return scheme, None, None, after
    userinfo, _, rest = after.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return scheme, user, password if colon else None, rest


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL of ``url``, also when its password holds a raw '@', ':' or '/'
    (which ``make_url`` alone misreads as host, port or path). Raises what ``make_url``
    raises."""
    scheme, user, password, rest = _split(url)
    if user is None:
        return make_url(url)
    userinfo = _quote(user) + ("" if password is None else ":" + _quote(password))
    return make_url(f"{scheme}://{userinfo}@{rest}")


def _quote(part: str) -> str:
    """A userinfo part percent-encoded once: make_url decodes it once, encoded or not."""
    return quote(unquote(part), safe="")


def _has_secret(url: str) -> bool:
    return _split(url)[2] is not None or bool(_SECRET_QUERY.search(url))


def _hidden_userinfo(scheme: str, user: str, password: str) -> str:
    """``scheme://user:***@`` as SQLAlchemy renders it with ``hide_password``; the host is
    a stand-in, so a URL whose host or port ``make_url`` refuses is still handled."""
    try:
        url = make_url(f"{scheme}://{_quote(user)}:{_quote(password)}@localhost")
        rendered = url.render_as_string(hide_password=True)
        return rendered[:rendered.rindex("@") + 1]
    except Exception:                                     # noqa: BLE001 - e.g. a scheme it refuses
        return f"{scheme}://{HIDDEN}@"


def hide_password(url: str) -> str:
    """``url`` with its password, and any ``password`` or ``sslpassword`` query parameter
    (any case), replaced by ``***``; a URL that holds neither comes back unchanged.

    The userinfo is parsed by ``make_url`` and rendered with ``hide_password=True``. What
    follows it is kept as written, secret query values hidden: a full render would
    re-encode and re-order it, and in free text a "URL" may run on into the next words
    (Hydra's ``override_dirname`` joins overrides with commas).
    """
    if not _has_secret(url):
        return url
    url = _SECRET_QUERY.sub(r"\g<1>" + HIDDEN, url)
    scheme, user, password, rest = _split(url)
    if password is None:
        return url
    return _hidden_userinfo(scheme, user, password) + rest


def _hide_one(found: re.Match) -> str:
    token = found.group(0)
    if "\\" not in token:
        return hide_password(token)
    # As Hydra echoes an override: find the password in the unescaped text, and keep the
    # rest escaped as it was (its unescaped ',' and '=' separate overrides)
    if not _has_secret(_HYDRA_ESCAPE.sub("", token)):
        return token
    token = _SECRET_QUERY.sub(r"\g<1>" + HIDDEN, token)
    scheme, user, password, _ = _split(_HYDRA_ESCAPE.sub("", token))
    if password is None:
        return token
    return _HYDRA_SPECIAL.sub(r"\\\g<0>", _hidden_userinfo(scheme, user, password)) + token.rpartition("@")[2]


def mask(text: str) -> str:
    """``text`` with the password of every URL in it hidden (see :func:`hide_password`):
    log lines, Hydra's printed or saved config, error messages. Text without a URL is
    returned unchanged."""
    if "//" not in text:
        return text
    return _URL_IN_TEXT.sub(_hide_one, text)


def mask_file(path: Path) -> None:
    """Rewrite a text file with its URL passwords hidden, if it holds any."""
    if path.is_file():
        text = path.read_text()
        if mask(text) != text:
            path.write_text(mask(text))


def mask_saved_config(hydra_dir: Path) -> None:
    """Hydra saves a job's config, its overrides and its own config as given: hide the
    passwords there (``.hydra/config.yaml``, ``overrides.yaml``, ``hydra.yaml``)."""
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        mask_file(hydra_dir / name)


class MaskedStream:
    """A text stream that hides passwords before they reach ``stream``.

    Text is held back until a newline or a flush, so a URL written in several pieces
    (``print`` writes its arguments one by one) is masked whole. Everything else
    (``isatty``, ``fileno``, ``encoding`` ...) is the wrapped stream's.
    """

    masks_passwords = True

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self._stream.write(mask(lines + "\n"))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(mask(self._pending))
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_streams() -> None:
    """Route this process's stdout and stderr through :class:`MaskedStream`.

    Why the streams rather than each message: Hydra prints ``--cfg job|hydra|all`` (with
    or without ``--resolve``) and ``--info`` itself and exits; argparse echoes unknown
    arguments; a crashing job's overrides are echoed by Hydra; tracebacks and warnings
    print whatever they hold. All of them write to ``sys.stdout``/``sys.stderr`` as found
    at the time, and Hydra's logging handlers bind them when Hydra configures logging,
    which is after this call. Idempotent.
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not getattr(stream, "masks_passwords", False):
            setattr(sys, name, MaskedStream(stream))


def mask_log_records() -> None:
    """Hide URL passwords in every log record of this process, whatever handlers (files
    included, which :func:`mask_streams` cannot see) Hydra installs later. Idempotent."""
    make: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    if getattr(make, "masks_passwords", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        text = record.getMessage()
        if mask(text) != text:
            record.msg, record.args = mask(text), ()
        return record

    factory.masks_passwords = True                      # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
