"""A calendar: the weight of each day in the histories that follow it.

The ``calendar`` group declares a week's rhythm (a weight per weekday), the year's seasons
(a weight per month) and each region's public holidays (the ``holidays`` package, a country
per label of a partners column, and the weight of a holiday). A history that follows the
calendar places its events on days in proportion to their weight: a login, a commission's
cents, a traffic session. Totals over a window stay what they are (a 30-day login count, a
month's commission: the features that are drawn columns stay exact), and the days inside
it move. Weights are relative: the weekdays' and the months' are normalized to a mean of 1.

Python knows the kinds of weight (weekday, month, holiday); YAML knows the weekdays' names,
the regions and their countries. A day's weight is the product of its three; a table of
every day's weight per country is built once per run (a few years x a few countries), and
a block's weights are one gather from it.
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import Problems, did_you_mean
from ..spec.checks import _is_number, _key
from ..spec.model import Domain

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
NO_COUNTRY = "*"              # a label without a country of its own: weekdays and months only
SHAPE = {"weekdays": None, "months": None, "holidays": {"by": None, "factor": None, "countries": None},
         "histories": None}
GROUP = "calendar:group"      # the inputs a history that follows the calendar is given: each
END = "calendar:end"          #   partner's country (a code) and the day its grid ends (epoch days)


@dataclass(frozen=True)
class Calendar:
    """A declared calendar (see the module docstring)."""

    path: str
    weekdays: tuple[float, ...]               # Monday first, mean 1
    months: tuple[float, ...]                 # January first, mean 1
    by: str | None                            # the partners column whose label picks the country
    labels: tuple                             # its labels, in the order of ``countries``
    countries: tuple[str | None, ...]         # each label's country (None: no holidays)
    factor: float                             # a holiday's weight, relative to its weekday
    histories: tuple[str, ...]                # the histories that follow it

    def codes(self, state: Mapping[str, Any], n: int) -> np.ndarray:
        """Each of the ``n`` partners' country in ``state`` (its ``by`` column), as an index
        into ``countries`` (0 without ``by``)."""
        if self.by is None:
            return np.zeros(n, dtype=np.int32)
        from ..stages.columns import codes_of
        return codes_of(state[self.by], self.labels).astype(np.int32)


def parse(p: Problems, path: str, decl: Any, domains: Mapping[str, Domain],
          histories: Mapping[str, str], able: tuple[str, ...]) -> Calendar | None:
    """The calendar at ``path`` (None when it is null or follows no history). ``histories``:
    each declared history's kind (None where it failed validation); ``able``: the kinds
    whose days can follow a calendar."""
    if decl is None:
        return None
    before = len(p.items)
    if not isinstance(decl, Mapping):
        p.add(path, f"must be a mapping with weekdays, months, holidays and histories, got {decl!r}")
        return None
    follow = decl.get("histories", [])
    if not isinstance(follow, (list, tuple)) or not all(isinstance(h, str) for h in follow):
        p.add(f"{path}.histories", f"must be a list of history names, got {follow!r}")
        return None
    for name in follow:
        if name not in histories:
            p.add(f"{path}.histories", f"unknown history {name!r}" + did_you_mean(name, histories))
        elif histories[name] is not None and histories[name] not in able:   # (None: reported there)
            p.add(f"{path}.histories", f"history {name!r} (kind {histories[name]}) cannot follow a calendar "
                  f"(kinds that can: {', '.join(able)})")
    weekdays = _weights(p, f"{path}.weekdays", decl.get("weekdays"), WEEKDAYS)
    months = _weights(p, f"{path}.months", decl.get("months"), MONTHS)
    holidays = _holidays(p, f"{path}.holidays", decl.get("holidays"), domains)
    if weekdays is None or months is None or holidays is None or len(p.items) > before:
        return None
    if not follow:
        return None
    return Calendar(path, weekdays, months, *holidays, tuple(follow))


def _weights(p: Problems, path: str, value: Any, names: tuple[str, ...]) -> tuple[float, ...] | None:
    """One weight per name (all of them, each > 0), normalized to a mean of 1; null: all 1."""
    if value is None:
        return (1.0,) * len(names)
    if not isinstance(value, Mapping):
        p.add(path, f"must map each of {', '.join(names)} to a weight > 0, got {value!r}")
        return None
    for key in value:
        if key not in names:
            p.add(f"{path}.{key}", "unknown name" + did_you_mean(str(key), names))
    missing = [n for n in names if n not in value]
    if missing:
        p.add(path, f"no weight for {', '.join(missing)}: declare all {len(names)} (1 for an ordinary one)")
    bad = [k for k, v in value.items() if not _is_number(v) or not 0 < v < float("inf")]
    for k in bad:
        p.add(f"{path}.{k}", f"must be a finite weight > 0, got {value[k]!r}")
    if missing or bad or set(value) - set(names):
        return None
    w = np.array([float(value[n]) for n in names])
    return tuple((w / w.mean()).tolist())


def _holidays(p: Problems, path: str, value: Any, domains: Mapping[str, Domain]) -> tuple | None:
    """(by, labels, countries, factor); null: no holidays."""
    if value is None:
        return None, (), (None,), 1.0
    before = len(p.items)
    if not isinstance(value, Mapping):
        p.add(path, f"must be a mapping with by, factor and countries, got {value!r}")
        return None
    factor = value.get("factor")
    if not _is_number(factor) or not 0 < factor <= 1:
        p.add(f"{path}.factor", f"must be a number in (0, 1]: activity on a public holiday relative to the "
              f"same weekday, got {factor!r}")
    by = value.get("by")
    dom = domains.get(by) if isinstance(by, str) else None
    if dom is None:
        p.add(f"{path}.by", f"must name a partners column of labels (whose label picks the country), got {by!r}"
              + (did_you_mean(by, domains) if isinstance(by, str) else ""))
        return None
    if dom.dtype == "any":                    # reported where the column is declared
        return None
    if dom.dtype != "category":
        p.add(f"{path}.by", f"{by!r} holds {dom.dtype} values; it needs labels (e.g. region)")
        return None
    countries = value.get("countries")
    if not isinstance(countries, Mapping) or not countries:
        p.add(f"{path}.countries", f"must map each label of {by} to a country code of the holidays package "
              f"(e.g. GB), got {countries!r}")
        return None
    # (labels this world's column never takes are allowed, as a region mix may leave regions
    # out; a label without an entry, nor a '*' one, has no holidays: stats.json lists who has.
    # One spelled like such a label is taken for a typo of it)
    table = {_key(k): v for k, v in countries.items()}
    uncovered = [k for k in dom.categories if k not in table]
    if len(uncovered) == len(dom.categories) and NO_COUNTRY not in table:
        p.add(f"{path}.countries", f"none of {by}'s labels ({', '.join(map(str, dom.categories))}) has a country "
              f"(nor '{NO_COUNTRY}'): no partner would have a holiday")
        return None
    for key in table:
        if key not in dom.categories and key != NO_COUNTRY and NO_COUNTRY not in table:
            close = difflib.get_close_matches(str(key), [str(k) for k in uncovered], n=1, cutoff=0.75)
            if close:
                p.add(f"{path}.countries.{key}", f"{by} has no label {key!r}, and {close[0]!r} has no country: "
                      f"did you mean {close[0]!r}?")
    for key, code in table.items():
        if code is not None and code not in _countries():
            upper = str(code).upper()             # (the package's codes are capitals: 'br' is BR)
            p.add(f"{path}.countries.{key}", f"unknown country {code!r} for the holidays package"
                  + (f"; did you mean {upper!r}?" if upper in _countries() else did_you_mean(str(code), _countries())))
    if len(p.items) > before:
        return None
    labels = tuple(dom.categories)
    return by, labels, tuple(table.get(k, table.get(NO_COUNTRY)) for k in labels), float(factor)


@functools.cache
def _countries() -> frozenset[str]:
    """The codes the holidays package knows. Its registry lists them without importing
    each country's module (list_supported_countries imports them all: a tenth of a
    second more at every load)."""
    try:
        from holidays.registry import COUNTRIES
        return frozenset(code for entry in COUNTRIES.values() for code in entry[1:3])
    except (ImportError, AttributeError, IndexError, TypeError):   # (a package laid out otherwise)
        import holidays
        return frozenset(holidays.list_supported_countries())


def weights(cal: Calendar, group: np.ndarray, end: np.ndarray | int, k: int) -> np.ndarray:
    """partners x k: the weight of each day of a grid of ``k`` days ending on ``end``
    (epoch days, per partner or one for all), for each partner's country ``group``."""
    end = np.asarray(end, dtype=np.int64)
    if end.size == 0:
        return np.zeros((0, k))
    lo, hi = int(end.min()) - k + 1, int(end.max())
    first, table, _ = _table(cal, _year(lo), _year(hi))
    group = np.asarray(group)
    if end.ndim == 0:                                      # one end for every partner
        return table[:, end - first + np.arange(1 - k, 1)][group]
    # most partners share their country and end (the feature date): each pair's days are
    # gathered once, then copied to its partners' rows
    ends = hi - lo + 1
    pairs, inverse = np.unique(group.astype(np.int64) * ends + (end - lo), return_inverse=True)
    days = (pairs % ends + lo - first)[:, None] + np.arange(1 - k, 1)
    return table[(pairs // ends)[:, None], days][inverse]


def _weekday(days: np.ndarray) -> np.ndarray:
    """Monday 0 ... Sunday 6 of epoch days (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def _year(day: int) -> int:
    return int(np.datetime64(day, "D").astype("datetime64[Y]").astype(int)) + 1970


@functools.lru_cache(maxsize=8)
def _table(cal: Calendar, y0: int, y1: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(the first day, countries x days weights, countries x days holidays): every day from
    1 January of ``y0`` to 31 December of ``y1``."""
    import holidays

    first = np.datetime64(f"{y0}-01-01", "D")
    days = np.arange(first, np.datetime64(f"{y1 + 1}-01-01", "D"))
    n = days.astype(np.int64)
    weekday = _weekday(n)
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    base = np.asarray(cal.weekdays)[weekday] * np.asarray(cal.months)[month]
    holiday = np.zeros((len(cal.countries), days.size), dtype=bool)
    for g, country in enumerate(cal.countries):
        if country is not None:
            dates = np.array(sorted(holidays.country_holidays(country, years=range(y0, y1 + 1))),
                             dtype="datetime64[D]")
            holiday[g] = np.isin(days, dates)
    table = base * np.where(holiday, cal.factor, 1.0)
    table.flags.writeable = holiday.flags.writeable = False
    return int(n[0]), table, holiday


def day_weights(h: Any, inp: Mapping[str, Any], k: int) -> np.ndarray | None:
    """The calendar weights of the last ``k`` days of a history's grid (None when the history
    follows no calendar): what a kind multiplies its day weights by."""
    cal = getattr(h, "calendar", None)
    return None if cal is None else weights(cal, inp[GROUP], inp[END], k)


def measured(cal: Calendar, dates: np.ndarray, values: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """The calendar as a history's rows show it, beside what it declares: the mean of
    ``values`` per row (a partner's day) by weekday, relative to their mean; the busiest
    weekday's over the quietest's; and per country, the mean on its holidays over the mean
    on the same weekday one and two weeks either side (not holidays themselves).
    ``groups``: each row's country (an index into ``cal.countries``)."""
    day = dates.astype("datetime64[D]").astype(np.int64)
    values = np.asarray(values, dtype=float)
    weekday = _weekday(day)
    total, count = np.bincount(weekday, values, 7), np.bincount(weekday, minlength=7)
    mean = total / np.maximum(count, 1)
    rel = mean / mean[count > 0].mean() if (count > 0).any() else mean
    declared = np.asarray(cal.weekdays)
    out: dict[str, Any] = {
        "weekdays": {name: {"declared": round(float(d), 4), "realized": round(float(r), 4)}
                     for name, d, r in zip(WEEKDAYS, declared, rel)},
        "busiest_to_quietest": {"declared": round(float(declared.max() / declared.min()), 4),
                                "realized": round(float(rel.max() / rel[count > 0].min()), 4) if count.all() else None},
    }
    if cal.by is None or not day.size:
        return out
    lo, hi = int(day.min()), int(day.max())
    first, _, holiday = _table(cal, _year(lo), _year(hi))
    holidays: dict[str, Any] = {}
    for g, (label, country) in enumerate(zip(cal.labels, cal.countries)):
        if country is None:
            continue
        mine = groups == g
        d, v = day[mine] - first, values[mine]
        hol = np.flatnonzero(holiday[g, lo - first:hi - first + 1]) + lo - first
        near = np.zeros(holiday.shape[1], dtype=bool)
        for shift in (-14, -7, 7, 14):                  # the same weekday, one and two weeks away
            at = hol + shift
            near[at[(at >= 0) & (at < near.size)]] = True
        near &= ~holiday[g]
        on, around = holiday[g, d], near[d]
        if on.any() and around.any():
            holidays[str(label)] = {"country": country, "days": int(np.unique(d[on]).size),
                                    "realized": round(float(v[on].mean() / max(v[around].mean(), 1e-12)), 4)}
    out["holidays"] = {"declared": cal.factor, "by": cal.by, **holidays}
    return out
