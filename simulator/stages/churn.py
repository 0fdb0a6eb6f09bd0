"""The churn process and each partner's timeline: who leaves, when, and how it is observed.

Kind ``churn``. A latent score (additive log-odds rules) gives each partner its churn
probability ``p = sigmoid(intercept + score)`` over the label window with no intervention
effect, and so a per-episode hazard ``q`` (simulator.truth). On the world's timeline
(simulator.spec.Timeline):

- *Before the feature date*: of the partners ``earlier.when`` allows, exactly the share
  ``earlier.share`` left in the ``earlier.days`` days before it, drawn by the same hazard
  (its own intercept; the riskiest most likely). They are in the partners table and the
  network (the subs whose leaving feeds a master's contagion) but not in the cohort, and
  are observed to the day before they left.
- *The label window*: every partner still active at the feature date (the cohort) gets one
  decision per episode (the interventions stage's realized effect ``e``) and churns in that
  episode when its uniform draw is below ``q + e``; the first such episode is its churn.

Each partner's observation end is the feature date, or the day before it left early; it
joined ``tenure`` days before that. Calibration picks the intercept at which the cohort's
realized churn rate meets the target: each partner's outcome switches at a threshold of
the intercept (closed form), so the intercept is an order statistic of those thresholds
(:func:`calibrate`; leaving early is solved the same way for its declared share). The step
is splittable (simulator.plan): when the rules read a scoped stage's columns (masters'
network features, which read who left before the feature date), the first pass decides
who left early, the scoped stage runs, and the second pass solves the label window's
intercept over the whole cohort, so the target holds exactly.

With a horizon (``timeline.snapshots`` > 1) the same process runs from a burn-in before the
first snapshot to as_of: every period has its own intercept, solved in closed form so that
every snapshot's cohort churns at the target within two standard errors (the catch-up damped,
:func:`gain`: :meth:`Periods.snapshots`), the split passes
playing every period for their rows; ``earlier`` is the one-snapshot world's burn-in.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dates import DAY, days_before
from ..errors import Problems
from ..expr import Expr, evaluate
from ..plan import Step
from ..review.data import Auc, FigureSpec, Headline, Rate, StageReview, Survival, Target, TargetBars
from ..spec.checks import _compile, _int, _is_number, named_entries
from ..spec.faults import Reactivations
from ..spec.model import Domain, RuleSpec
from ..spec.shape import Open
from ..spec.shocks import Shock, ShockEffect, applied, first_start, phases
from ..spec.shocks import reads as shock_reads
from ..stage import BaseStage, ParseContext, RunContext
from ..state import movers, state_at
from ..truth import churn_given, episode_hazard, hazard_column, trigger


def _radius(g: float, episodes: int) -> float:
    """How fast a departure from a steady churn decays a period when each window-closing
    period moves a share ``g`` of the way (:func:`gain`): the largest root of
    x_j = (1 - 2g) x_(j-1) - g (x_(j-2) + ... + x_(j-episodes+1))."""
    if episodes == 1:
        return 0.0
    companion = np.eye(episodes - 1, k=-1)
    companion[0] = [1 - 2 * g] + [-g] * (episodes - 2)
    return float(np.abs(np.linalg.eigvals(companion)).max())


@functools.lru_cache(maxsize=None)
def gain(episodes: int) -> float:
    """The share of the way a horizon's window-closing period moves its churn count, from
    what the period before's intercept gives to what closes its snapshot exactly. Closing
    exactly (1) holds every run of ``episodes`` periods' churn constant, a recurrence whose
    period-``episodes`` mode never decays, so chance feeds it for good. The share is
    1 / episodes, the closing period's share of its window (a departure then shrinks by
    0.58 a period at 3 episodes; measured, the period-3 mode is gone to chance at 0.0009
    against 0.0094 exactly); where that decays slower than 0.9 a period (from 6 episodes;
    from 9 it would grow), the largest share below it that decays by 0.9 (0.115 at 6, 0.010
    at 12), or failing one (from 20 episodes), exactly, as no share damps the mode
    then without a slow drift of its own. One episode has no recurrence: exactly."""
    if episodes == 1 or _radius(1 / episodes, episodes) <= 0.9:
        return 1 / episodes
    grid = np.geomspace(1e-4, 1 / episodes, 200)
    damped = [g for g in grid if _radius(g, episodes) <= 0.9]
    return float(max(damped)) if damped else 1.0


def score(rules: tuple[RuleSpec, ...], env: Mapping[str, object], n: int) -> np.ndarray:
    """Sum of weight * rule value per row; a rule on a missing (null) value adds nothing."""
    total = np.zeros(n)
    for rule in rules:
        value = np.asarray(evaluate(rule.expr, env, n), dtype=float)
        total += rule.weight * np.nan_to_num(value, nan=0.0)
    return total


def probability(scores: np.ndarray, intercept: float) -> np.ndarray:
    """The model's churn probability over the label window: sigmoid(intercept + score)."""
    return 1.0 / (1.0 + np.exp(-(scores + intercept)))


def _logit_of_power(u: np.ndarray, k: float) -> np.ndarray:
    """logit(1 - (1 - u) ** k) for u in (0, 1), stable at both ends."""
    log_keep = k * np.log1p(-u)
    return np.log(-np.expm1(log_keep)) - log_keep


def label_thresholds(u: np.ndarray, effect: np.ndarray, episodes: int, relative: bool = False) -> np.ndarray:
    """Per partner, the value of intercept + score above which it churns in some episode:
    episode j triggers when u_j < q + e_j, i.e. when q exceeds u_j - e_j (relative effects:
    u_j < q (1 + e_j), q above u_j / (1 + e_j); simulator.truth.trigger)."""
    need = trigger(u, effect, relative)                # the hazard q that triggers each episode
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(need <= 0, -np.inf, np.where(need >= 1, np.inf,
                                                  _logit_of_power(np.clip(need, 1e-300, 1 - 1e-16), episodes)))
    return t.min(axis=1)


def earlier_thresholds(u: np.ndarray, days: int, window_days: int) -> np.ndarray:
    """intercept + score above which a partner leaves in the ``days`` before the feature
    date: P(leave) = 1 - (1 - p) ** (days / window_days)."""
    return _logit_of_power(np.clip(u, 1e-300, 1 - 1e-16), window_days / days)


def calibrate(label_t: np.ndarray, active: np.ndarray, k: int) -> float:
    """The intercept b at which exactly ``k`` of the ``active`` rows (the cohort at the
    feature date, golden records aside) churn in the window (threshold ``label_t`` < b)."""
    t = np.sort(label_t[active])
    if t.size == 0:
        return 0.0
    if k <= 0:
        return float(t[0]) - 1.0 if np.isfinite(t[0]) else -60.0
    if k >= t.size:
        return float(t[-1]) + 1.0 if np.isfinite(t[-1]) else 60.0
    lo, hi = t[k - 1], t[k]                    # between the k-th and (k+1)-th threshold
    if not np.isfinite(hi):
        return float(lo) + 1.0
    if not np.isfinite(lo):
        return float(hi) - 1.0
    return float(lo + hi) / 2


def solve_intercept(count, k: int, still: np.ndarray, lo: float = -60.0, hi: float = 60.0,
                    steps: int = 60) -> float:
    """The intercept in the middle of those at which exactly ``k`` partners churn.

    ``count(b)``, the churners at intercept b, does not fall as b rises (every hazard rises,
    and a master's risk only rises with its subs' churn; a decision taken on the moved
    state may bend that, and the search then finds the nearest it can). With every state
    held at the feature date the churners' thresholds ``still`` are closed-form
    (:func:`label_thresholds`), so the search runs over their middles (a binary search:
    a dozen plays) and lands on :func:`calibrate`'s answer exactly when nothing moves;
    only where a moved state jumps the count past k inside one gap does it bisect the gap
    for the middle of the intercepts that give k, and where none does (a sub's churn tips
    its master at the same intercept: two at once) for the side within one of k."""
    t = np.sort(still)
    if t.size == 0:
        return 0.0
    lower = np.r_[-np.inf, t]
    upper = np.r_[t, np.inf]
    with np.errstate(invalid="ignore"):
        middles = np.where(np.isfinite(lower) & np.isfinite(upper), (lower + upper) / 2,
                           np.where(np.isfinite(lower), lower + 1, np.where(np.isfinite(upper), upper - 1,
                                    np.where(upper < 0, lo, np.where(lower > 0, hi, 0.0)))))
    middles = np.maximum.accumulate(np.clip(np.nan_to_num(middles, nan=lo), lo, hi))
    if k <= 0:
        return float(middles[0])
    if k >= t.size:
        return float(middles[-1])
    # the smallest i whose middle reaches k (i = k when nothing moves; a moved state may
    # add churners, or remove some where a decision on it works: the search covers both)
    a, z = 0, t.size
    if count(middles[0]) >= k:
        z = 0
    elif count(middles[z]) < k:
        return float(middles[z])
    while z - a > 1:
        mid = (a + z) // 2
        if count(middles[mid]) >= k:
            z = mid
        else:
            a = mid
    got = count(middles[z])
    if got == k or z == 0:
        return float(middles[z])

    def first_reaching(target: int, a: float, z: float) -> tuple[float, float]:
        """(the last b below ``target`` churners, the first b reaching it), to the last bits."""
        for _ in range(steps):
            mid = (a + z) / 2
            if count(mid) >= target:
                z = mid
            else:
                a = mid
        return a, z
    below, reach = first_reaching(k, middles[z - 1], middles[z])
    b = (reach + first_reaching(k + 1, middles[z - 1], middles[z])[1]) / 2
    if count(b) == k:
        return b
    # no intercept gives k: one sub's churn tips its master at the same b (two at once);
    # the nearer side (above on a tie), within one partner of the target
    return below if k - count(below) < count(reach) - k else reach


@dataclass(frozen=True)
class Path:
    """One play of the world's periods at an intercept (the label window's)."""

    episode: np.ndarray       # each partner's churn period (-1: stays; the horizon's periods first)
    hazard: np.ndarray        # (partners, periods): the hazard at each period's start
    gone: np.ndarray          # churn dates (the early leavers' too)


class Periods:
    """The world's periods for one block (or, replayed by the arena, the world): the draws,
    and the state other stages move through time (:meth:`Stage.state_at`) where the rules,
    or a stage that decides each period (:meth:`Stage.decide_at`: the logging policy), read
    it. With a horizon of snapshots every period is played once, each with its own intercept
    (:meth:`snapshots`, after the burn-in's); with one, the label window's are played at any
    intercept (:meth:`play`, which the arena also replays from any snapshot). ``replay``, when given, takes the window's decisions instead: it is
    called with the period (its index among all periods), its state, who is active and
    their hazards, and fills that period's column of ``effect``."""

    def __init__(self, churn: "Churn", ctx: RunContext, effect: np.ndarray, u: np.ndarray, day: np.ndarray,
                 pinned: np.ndarray, replay=None, later: frozenset[str] = frozenset()):
        self.ctx, self.effect, self.u, self.pinned, self.replay = ctx, effect, u, pinned, replay
        self.churn, self.signal, tl = churn, churn.signal, ctx.world.timeline
        self.dates = tl.period_dates()
        self.window = tl.snapshots - 1                                # the label window's first period
        self.when = self.dates[:, None] + day[None, :] * DAY          # the churn day in each period
        self.present = np.asarray(ctx.env[churn.cohort], dtype=bool)  # in the world at the horizon's start or later
        self.joined = np.asarray(ctx.env[churn.joined], dtype="datetime64[us]")
        self.start = np.asarray(ctx.env[churn.date_column], dtype="datetime64[us]")   # the early leavers
        stages = [s for s in ctx.world.stages if s.name not in later]    # (`later`: not run yet)
        moving = frozenset().union(*(s.varying() for s in stages))
        read = frozenset().union(*(r.expr.names for r in churn.rules), shock_reads(churn.shifts))
        self.deciders = [s for s in stages if s.decides() & moving] if churn.treatment and replay is None else []
        # how the treatment acts on the hazard: the stage that writes it says (absolute unless relative)
        self.relative = any(bool(getattr(s, "relative", False)) for s in ctx.world.stages
                            if churn.treatment in s.writes())
        needed = read.union(*(s.decides() for s in self.deciders)) | (moving if replay is not None else frozenset())
        self.movers = movers(stages, needed)
        self.moving = tuple(r for r in churn.rules if r.expr.names & moving)
        self.steady = churn.signal * score(tuple(r for r in churn.rules if not r.expr.names & moving), ctx.env, ctx.n)
        self.first = self.steady + churn.signal * score(self.moving, ctx.env, ctx.n)
        self.episodes = tl.episodes
        known = ctx.env.get(hazard_column(churn.probability))   # an earlier pass's hazards
        self.hazard = np.array(known, dtype=float) if isinstance(known, np.ndarray) and known.ndim == 2 \
            else np.zeros((ctx.n, tl.periods))
        self.before = Path(np.full(ctx.n, -1), self.hazard, self.start)   # the horizon's outcome (none yet)

    def state(self, j: int, gone: np.ndarray) -> Mapping[str, object]:
        """The columns as of period ``j``'s start (the partners table's at the feature date
        of one snapshot; a horizon's state there is its stages', which hold it)."""
        if (j == self.window and self.ctx.world.timeline.snapshots == 1) or not self.movers:
            return self.ctx.env
        return state_at(self.ctx, self.movers, self.dates[j], gone)

    def scores(self, state: Mapping[str, object], j: int | None = None) -> np.ndarray:
        """The rules' score on ``state``, plus the log-odds the shocks acting on period ``j``
        add (simulator.spec.shocks)."""
        base = self.first if state is self.ctx.env or not self.moving else \
            self.steady + self.signal * score(self.moving, state, self.ctx.n)
        shift = self.shift(j, state)
        return base if shift is None else base + shift

    def shift(self, j: int | None, state: Mapping[str, object]) -> np.ndarray | None:
        """The log-odds the shocks acting on period ``j`` add to each row's hazard (None:
        none acts)."""
        if j is None or not self.churn.shifts:
            return None
        return applied(self.churn.shifts, self.dates[j], state, self.ctx.n, add=True)

    def _intercept(self, j: int, tag: str, solved: list, t: np.ndarray, pool: np.ndarray, solve) -> float:
        """Period ``j``'s intercept, ``solve()`` (the ``pool`` churn at it by their thresholds
        ``t``), until the world's first shock; from its start on, held at the one at which
        the periods before it, pooled, churn exactly as they did, so the shock moves churn
        rather than the calibration absorbing it (``solved``: those periods' thresholds and
        counts)."""
        name, frozen = f"churn_intercept_{j}{tag}", self.churn.frozen_from
        if frozen is not None and self.dates[j] >= frozen:
            return self.ctx.solve(name, lambda: calibrate(np.concatenate([s for s, _ in solved]),
                                                          np.ones(sum(s.size for s, _ in solved), dtype=bool),
                                                          sum(c for _, c in solved)))
        b = self.ctx.solve(name, solve)
        if frozen is not None:
            solved.append((t[pool], int(np.count_nonzero(t[pool] < b))))
        return b

    def snapshots(self, rate: float, rows: np.ndarray, tag: str = "") -> Path:
        """Every period in order, for the partners ``rows`` (the others' churn dates are
        given), each with its own intercept, solved so that every snapshot's cohort churns
        at ``rate`` in the label window after it, within two standard errors: a period that
        closes a snapshot's window (the ``episodes``-th after it) moves its churners
        :func:`gain` of the way from those at the period before's intercept to the churners
        that snapshot still needs from its partners still active (:meth:`_damped`; those who
        joined later churn at the same intercept); the first periods, which close none, take
        the one intercept at which the first snapshot's cohort, played through its window,
        churns at ``rate`` (:meth:`_steady`; where that window reaches the feature date,
        round(q x active), q the per-period hazard of ``rate``). Golden records stay until
        the window, where a pinned churner churns in its last period if not before."""
        n, ctx, tl = self.ctx.n, self.ctx, self.ctx.world.timeline
        gone, episode = self.start.copy(), np.full(n, -1)
        q = float(episode_hazard(rate, self.episodes))
        forced, never = self.pinned == 1, self.pinned == 0
        held = ~np.isnan(self.pinned)
        self._burn_in(q, rows, held, gone, tag)
        exact = self.window < self.episodes        # no steady first periods: their shortfall made up whole
        b: float | None = None                    # the period before's intercept (none before the first)
        members: list[np.ndarray] = []            # each snapshot's cohort (of ``rows``)
        others: list[int] = []                    # and how many of the others' it holds (the other pass's)
        solved: list = []                         # the periods before the first shock: thresholds, counts
        last = self.dates.size - 1
        for j in range(self.dates.size):
            alive = self.present & tl.active_on(self.dates[j], self.joined, gone)
            active = rows & alive
            if j < self.window + 1:
                members.append(active)
                others.append(int(np.count_nonzero(alive & ~rows)))
            state = self.state(j, gone)
            for stage in self.deciders:
                stage.decide_at(ctx, j, state)
            scores = self.scores(state, j)
            t = label_thresholds(self.u[:, j:j + 1], self.effect[:, j:j + 1], self.episodes, self.relative) - scores
            free = active & ~(held if j < self.window else never)   # (a pinned churner may go early, as in play)
            closes = j - self.episodes + 1         # the snapshot whose window this period closes
            if closes >= 0:
                cohort = members[closes]
                counted = int(np.count_nonzero(cohort & (~held if closes < self.window else ~never)))
                want = int(round(rate * counted))
                had = int(np.count_nonzero(cohort & (episode >= closes)))
                pool = cohort & free
                k = want - had - (int(np.count_nonzero(cohort & forced & active)) if j == last else 0)
                b = self._intercept(j, tag, solved, t, pool,
                                    self._damped(t, pool, k, counted, rate, b, exact, others[closes]))
            elif self.window >= self.episodes:     # one intercept until the first window closes
                b = self._intercept(j, tag, solved, t, free,
                                    (lambda: self._steady(rate, rows, held, gone)) if j == 0 else (lambda: first))
                first = b
            else:                                  # the first window reaches the feature date, where the
                k = int(round(q * np.count_nonzero(free)))   # stages settle: no trial play, the hazard's count
                b = self._intercept(j, tag, solved, t, free, lambda: calibrate(t, free, k))
            self.hazard[:, j] = np.where(rows, episode_hazard(probability(scores, b), self.episodes), self.hazard[:, j])
            hit = free & (self.u[:, j] < churn_given(self.hazard[:, j], self.effect[:, j], self.relative))
            if j == last:
                hit |= active & forced
            episode[hit] = j
            gone[hit] = self.when[j, hit]
        self.before = Path(episode, self.hazard, gone)
        return self.before

    def _damped(self, t: np.ndarray, pool: np.ndarray, k: int, mine: int, rate: float, before: float | None,
                exact: bool, others: int = 0) -> Callable[[], float]:
        """The solver of a window-closing period's intercept: the ``pool``'s churners (by
        their thresholds ``t``) move :func:`gain` of the way from those at the period
        before's intercept ``before`` to the ``k`` that close the snapshot's window exactly
        (``mine``: the snapshot's partners this pass plays), and no further from ``k`` than
        this pass's share of two standard errors of the snapshot's count, so a shortfall no chance would explain (the
        first periods' of a world without a burn-in) is made up to within them; exactly
        with no period before, or when ``exact``. With the masters played in a pass of their
        own (``others``: the snapshot's partners the other pass plays), the two shares are
        in proportion to each pass's own standard error and add up to the world's two."""
        def solve() -> float:
            if before is None or exact:
                return calibrate(t, pool, k)
            have = int(np.count_nonzero(t[pool] < before))
            share = np.sqrt(mine) / max(np.sqrt(mine) + np.sqrt(others), 1.0)   # (none in it: no spread)
            spread = int(2 * np.sqrt(rate * (1 - rate) * (mine + others)) * share)
            return calibrate(t, pool, int(np.clip(have + round(gain(self.episodes) * (k - have)), k - spread,
                                                  k + spread)))
        return solve

    def _steady(self, rate: float, rows: np.ndarray, held: np.ndarray, gone: np.ndarray) -> float:
        """The intercept of the periods that close no snapshot's window: the one at which
        the first snapshot's cohort, played through its label window at that one intercept
        (states moving, decisions taken), churns at ``rate``: where a steady world's periods
        are. Each later period closes a window, so a first period off the steady one would
        be made up every third period, until the damping wears it down (a per-period
        hazard of ``rate`` churns less than a steady world's periods: the riskiest leave
        first)."""
        ctx, tl, e = self.ctx, self.ctx.world.timeline, self.episodes
        start = gone.copy()
        cohort = rows & self.present & tl.active_on(self.dates[0], self.joined, start) & ~held
        k = int(round(rate * np.count_nonzero(cohort)))

        def count(b: float) -> int:
            for back in restore:               # every trial from the same start
                back()
            gone, churned = start.copy(), 0
            for j in range(e):
                active = rows & self.present & tl.active_on(self.dates[j], self.joined, gone) & ~held
                state = self.state(j, gone)
                for stage in self.deciders:
                    stage.decide_at(ctx, j, state)
                hazard = episode_hazard(probability(self.scores(state, j), b), e)
                hit = active & (self.u[:, j] < churn_given(hazard, self.effect[:, j], self.relative))
                churned += int(np.count_nonzero(hit & cohort))
                gone[hit] = self.when[j, hit]
            return churned
        restore = [stage.kept(ctx) for stage in self.movers]
        # at ``still`` the cohort would churn at rate if its state held through the window;
        # moving, more of it meets a risk there, so the steady intercept lies below it unless
        # the decisions' effects push it above: bracket it, then bisect to a hundredth of a
        # log-odds (the periods after it close their windows)
        first = self.scores(self.state(0, start), 0)
        still = calibrate(label_thresholds(self.u[:, :e], np.zeros((ctx.n, e)), e, self.relative) - first, cohort, k)
        lo, hi = still - 8.0, still + 1.0
        try:
            while count(lo) > k and lo > -120.0:
                lo -= 8.0
            while count(hi) < k and hi < 120.0:
                hi += 8.0
            while hi - lo > 0.01:
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if count(mid) < k else (lo, mid)
        finally:
            for back in restore:
                back()
        return (lo + hi) / 2

    def _burn_in(self, q: float, rows: np.ndarray, held: np.ndarray, gone: np.ndarray, tag: str) -> None:
        """The burn-in's periods before the first snapshot (``timeline.burn_in``): churn only,
        each taking round(q x active) of the ``rows`` active at its start with the hazard of
        its state, no decision (the logging policy's begin with the horizon), so the first
        snapshot's cohort has been through what every later one has; ``gone`` gets the
        dates. Its own draws, not the periods'."""
        tl, ctx, n = self.ctx.world.timeline, self.ctx, self.ctx.n
        u = ctx.rng("churn", "burn-in").random((n, tl.burn_in))
        day = ctx.rng("churn", "burn-in-day").integers(1, tl.episode_days + 1, n) * DAY
        period = np.timedelta64(tl.episode_days, "D")
        for i in range(tl.burn_in):
            start = self.dates[0] - (tl.burn_in - i) * period
            active = rows & self.present & tl.active_on(start, self.joined, gone)
            scores = self.scores(state_at(ctx, self.movers, start, gone) if self.movers else ctx.env)
            free = active & ~held
            t = label_thresholds(u[:, i:i + 1], np.zeros((n, 1)), self.episodes) - scores
            k = int(round(q * np.count_nonzero(free)))
            b = ctx.solve(f"churn_intercept_burn_in_{i}{tag}", lambda: calibrate(t, free, k))
            hit = free & (u[:, i] < episode_hazard(probability(scores, b), self.episodes))
            gone[hit] = start + day[hit]

    @property
    def cohort(self) -> np.ndarray:
        """Active at the feature date: in the world, joined by then, not gone in the horizon."""
        gone = self.before.gone
        return self.present & (self.joined <= self.dates[self.window]) & np.isnat(gone)

    def play(self, b: float | np.ndarray, first: int | None = None) -> Path:
        """The periods from ``first`` (default: the label window's first) to as_of at
        intercept ``b``: one number, or (with a horizon) each period's per row, (partners,
        periods). A partner is active in a period when it is in the world, joined by its
        start and not gone (the churn dates before ``first`` are the world's)."""
        last = self.dates.size - 1
        first = self.window if first is None else first
        b = np.asarray(b, dtype=float)
        gone, episode = self.before.gone.copy(), self.before.episode.copy()
        hazard = self.hazard.copy()
        forced, never, held = self.pinned == 1, self.pinned == 0, ~np.isnan(self.pinned)
        for j in range(first, self.dates.size):
            alive = self.present & (self.joined <= self.dates[j]) & np.isnat(gone)
            state = self.state(j, gone)
            hazard[:, j] = episode_hazard(probability(self.scores(state, j), b if b.ndim == 0 else b[:, j]),
                                          self.episodes)
            if self.replay is not None:
                self.replay(j, state, alive, hazard[:, j])
            elif state is not self.ctx.env:           # the period's decisions on its moved state
                for stage in self.deciders:
                    stage.decide_at(self.ctx, j, state)
            hit = alive & (self.u[:, j] < churn_given(hazard[:, j], self.effect[:, j], self.relative)) \
                & ~(never if j >= self.window else held)
            if j == last:
                hit |= alive & forced                  # a golden churner churns in the window
            episode[hit] = j
            gone[hit] = self.when[j, hit]
        return Path(episode, hazard, gone)


@dataclass(frozen=True)
class Earlier:
    """Who may leave before the feature date, how many of them, over how many days."""

    days: int
    share: float
    when: Expr | None


@dataclass(frozen=True)
class Churn(BaseStage):
    name: str
    kind: str
    label: str
    probability: str
    target_rate: float
    rules: tuple[RuleSpec, ...]
    date_column: str
    joined: str                               # the joining date column it writes
    tenure: str                               # days from joining to the observation end (a partners column)
    observed: str                             # helper: each partner's observation end
    cohort: str                               # helper: active at the feature date
    earlier: Earlier | None = None
    treatment: str | None = None              # helper column (partners x episodes): realized effects
    truth: str | None = None                  # P(churn in the window | latent state, decisions): the oracle
    signal: float = 1.0                       # scales every rule's weight: how decisive the risk is
    snapshots: int = 1                        # the timeline's: with more, the label is a snapshot's too
    burn_in_days: int = 0                     # the timeline's burn-in, in days (a horizon's)
    shifts: tuple[tuple[Shock, ShockEffect], ...] = ()   # shocks shifting the hazard's log-odds
    frozen_from: np.datetime64 | None = None  # the world's first shock: intercepts held from it on
    returned: Reactivations | None = None     # churners returning (faults.reactivations): the day, in its column

    def varying(self) -> frozenset[str]:
        return frozenset([self.label]) if self.snapshots > 1 else frozenset()

    def state_at(self, ctx: RunContext, when, gone, state) -> dict[str, object]:
        """The label of a snapshot on ``when``: churn in the label window after it."""
        return {self.label: ctx.world.timeline.churns_after(when, gone)}

    def writes(self) -> dict[str, Domain]:
        return {**_owned(self.label, self.probability, self.date_column, self.joined, self.observed, self.cohort),
                **({self.truth: Domain("float", nullable=True)} if self.truth else {}),
                **({self.returned.column: Domain("datetime", nullable=True)} if self.returned else {})}

    def output_columns(self) -> list[str]:
        return [self.joined, self.label, self.date_column, *([self.truth] if self.truth else []),
                *([self.returned.column] if self.returned else [])]

    def lookback(self) -> list[tuple[str, int]]:
        # early leavers are observed to a day up to earlier.days before the first snapshot
        # (with several, the burn-in's periods instead)
        if self.snapshots > 1:
            return [("timeline.burn_in", self.burn_in_days)] if self.burn_in_days else []
        return [(f"{self.name}.earlier.days", self.earlier.days)] if self.earlier else []

    def roles(self) -> dict[str, str]:
        return {"label": self.label, "probability": self.probability, "event_date": self.date_column,
                "joined": self.joined, "observed_end": self.observed, "cohort": self.cohort,
                **({"returned": self.returned.column} if self.returned else {})}

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        out = [(r.path, r.expr.names) for r in self.rules]
        out += [(e.path, shock_reads([(s, e)])) for s, e in self.shifts]
        if self.earlier and self.earlier.when is not None:
            out.append((f"{self.name}.earlier.when", self.earlier.when.names))
        if self.treatment:
            out.append((f"{self.name}.treatment", frozenset([self.treatment])))
        return out

    def expressions(self) -> list[tuple[str, Expr, str | None]]:
        out = [(f"{r.path}.{'when' if r.boolean else 'value'}", r.expr, "bool" if r.boolean else "number")
               for r in self.rules]
        if self.earlier is not None and self.earlier.when is not None:
            out.append((f"{self.name}.earlier.when", self.earlier.when, "bool"))
        return out

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        if domains.get(self.tenure, Domain("")).dtype not in ("int", "any"):
            p.add(f"{self.name}.joined.tenure_days", f"must name an integer partners column (days from joining "
                  f"to the observation end), got {self.tenure!r}")

    def steps(self) -> list[Step]:
        reads = frozenset().union(*(names for _, names in self.reads()), [self.tenure])
        # the window's decisions are read by the pass inside the scope only (they may read
        # what the scoped step writes: a policy on the masters' network); a horizon's first
        # pass plays every period, decisions included, so both read them
        inside = frozenset([self.treatment]) if self.treatment and self.snapshots == 1 else frozenset()
        return [Step(self, self.name, reads, frozenset(self.writes()), path=f"{self.name}.rules",
                     splittable=True, inside_reads=inside)]

    def run(self, step: Step, ctx: RunContext) -> None:
        """The first (or only) pass decides who left before the horizon's start; the last
        (or only) pass decides the label window for the whole cohort, with the intercept
        solved there so the target holds exactly (see the module docstring). With a horizon
        of snapshots, each pass plays every period for its rows (outside the scope, then
        inside it) with the intercepts of :meth:`Periods.snapshots`."""
        pinned = self._pinned(ctx, ctx.n)
        horizon = ctx.world.timeline.snapshots > 1
        rows = np.ones(ctx.n, dtype=bool) if step.scope is None else \
            np.asarray(ctx.env[step.scope[1]], dtype=bool) == (step.scope[0] == "inside")
        if step.scope is None or step.scope[0] == "outside":
            # a later pass's columns (network features) count as missing
            self._earlier(ctx, self.signal * score(self.rules, ctx.env, ctx.n), pinned)
            if horizon:
                later = frozenset(s.name for s in ctx.world.stages if step.scope and any(
                    t.scope_column == step.scope[1] for t in s.steps()))
                self._snapshots(ctx, pinned, rows, "", later)
        if step.scope is None or step.scope[0] == "inside":
            if not horizon:
                self._window(ctx, pinned)
            else:
                if step.scope is not None:
                    self._snapshots(ctx, pinned, rows, ":inside")
                self._close(ctx, pinned, rows if step.scope is not None else None)
            if self.returned is not None:
                self._return(ctx)

    def _return(self, ctx: RunContext) -> None:
        """The day each returning churner came back (faults.reactivations; null: it did not by
        as_of), from streams of its own drawn for every partner, so who churns changes no one
        else's draw."""
        r, n = self.returned, ctx.n
        gone = np.asarray(ctx.env[self.date_column], dtype="datetime64[us]")
        back = ctx.rng("faults", "reactivations").random(n) < r.share
        days = ctx.rng("faults", "reactivations", "days").geometric(1 / r.days, n)
        when = gone + days * DAY
        ctx.env[r.column] = np.where(back & ~np.isnat(gone) & (when <= np.datetime64(ctx.world.as_of, "us")),
                                     when, np.datetime64("NaT", "us"))

    def _periods(self, ctx: RunContext, pinned: np.ndarray, later: frozenset[str] = frozenset()) -> "Periods":
        env, n, tl = ctx.env, ctx.n, ctx.world.timeline
        effect = np.asarray(env[self.treatment], dtype=float) if self.treatment else np.zeros((n, tl.periods))
        return Periods(self, ctx, effect, ctx.rng("churn", "episodes").random((n, tl.periods)),
                       ctx.rng("churn", "day").integers(1, tl.episode_days + 1, n), pinned, later=later)

    def _snapshots(self, ctx: RunContext, pinned: np.ndarray, rows: np.ndarray, tag: str,
                   later: frozenset[str] = frozenset()) -> None:
        """Every period for ``rows``: their churn dates and hazards (:meth:`Periods.snapshots`)."""
        path = self._periods(ctx, pinned, later).snapshots(self.target_rate, rows, tag)
        ctx.env[self.date_column] = path.gone
        ctx.env[hazard_column(self.probability)] = path.hazard

    def _close(self, ctx: RunContext, pinned: np.ndarray, inside: np.ndarray | None) -> None:
        """A horizon's columns once every period is played: the cohort at the feature date,
        the label (churn by as_of), the window's probability without effects at the
        feature date's state (the intercepts of each row's pass: ``inside`` the scope's),
        and the oracle's."""
        env, tl = ctx.env, ctx.world.timeline
        periods = self._periods(ctx, pinned)
        window = slice(periods.window, None)
        gone = np.asarray(env[self.date_column], dtype="datetime64[us]")
        cohort = periods.present & tl.active_on(tl.feature_date, periods.joined, gone)
        intercepts = np.array([[ctx.solved[f"churn_intercept_{j}{tag}"] for j in range(tl.periods)]
                               for tag in ("", *([":inside"] if inside is not None else []))])
        b = intercepts[np.zeros(ctx.n, dtype=int) if inside is None else inside.astype(int)]
        shifts = [periods.shift(j, env) for j in range(periods.window, tl.periods)]   # (the shocks, at its state)
        shifted = np.stack([periods.first if d is None else periods.first + d for d in shifts], axis=1)
        still = episode_hazard(probability(shifted, b[:, window]), tl.episodes)
        env[self.cohort] = cohort
        env[self.label] = ~np.isnat(gone)
        env[self.probability] = 1 - np.prod(1 - still, axis=1)
        if self.truth:                     # the label's own probability: the draws u are all it does not know
            hazard = periods.hazard
            stay = np.prod(1 - churn_given(hazard[:, window], periods.effect[:, window], periods.relative), axis=1)
            env[self.truth] = np.where(cohort, 1 - stay, np.nan)

    def _window(self, ctx: RunContext, pinned: np.ndarray) -> None:
        """The world's periods: the horizon's before the feature date, each with its own
        intercept (:meth:`Periods.horizon`), then the label window, where each partner still
        active at a period's start churns in it with its hazard from the state at that start
        (the columns other stages give as of that day: a master's subs that left in earlier
        periods) plus its decision's realized effect; the window's intercept is solved so the
        cohort's churn meets the target exactly (the first block's; every other block is
        handed it)."""
        env, tl = ctx.env, ctx.world.timeline
        periods = self._periods(ctx, pinned)
        effect = periods.effect
        cohort = periods.cohort
        window = slice(periods.window, None)
        free = cohort & np.isnan(pinned)               # golden churners count toward the target
        k = int(round(self.target_rate * np.count_nonzero(cohort))) - int(np.count_nonzero(pinned == 1))

        def search() -> float:                 # the first block's; every other block is handed it
            still = label_thresholds(periods.u[:, window], effect[:, window], tl.episodes, periods.relative) \
                - periods.first
            return solve_intercept(lambda b: int(np.count_nonzero(free & (periods.play(b).episode >= periods.window))),
                                   k, still[free])
        b = ctx.solve("churn_intercept", search)
        path = periods.play(b)
        churns = path.episode >= periods.window
        env[self.cohort] = cohort
        env[self.label] = ~cohort | churns
        env[self.probability] = probability(periods.first, b)
        env[hazard_column(self.probability)] = path.hazard
        if self.truth:                     # the label's own probability: the draws u are all it does not know
            stay = np.prod(1 - churn_given(path.hazard[:, window], effect[:, window], periods.relative), axis=1)
            env[self.truth] = np.where(cohort, 1 - stay, np.nan)
        env[self.date_column] = path.gone

    def _earlier(self, ctx: RunContext, scores: np.ndarray, pinned: np.ndarray) -> None:
        """Who left before the feature date, when, and every partner's observation end and
        joining date: exactly the declared share of those who may, the riskiest most
        likely (the same hazard, with its own intercept)."""
        env, n, tl = ctx.env, ctx.n, ctx.world.timeline
        early = np.zeros(n, dtype=bool)
        if self.earlier is not None and tl.snapshots == 1:     # (a horizon plays its burn-in instead)
            eligible = np.ones(n, dtype=bool) if self.earlier.when is None else \
                np.asarray(evaluate(self.earlier.when, env, n), dtype=bool)
            eligible &= np.isnan(pinned)                        # golden records are in the cohort
            early_t = np.where(eligible, earlier_thresholds(ctx.rng("churn", "earlier").random(n),
                                                            self.earlier.days, tl.window_days) - scores, np.inf)
            k = int(round(self.earlier.share * np.count_nonzero(eligible)))
            if k > 0 or "earlier_intercept" in ctx.given:   # exactly k leave: the k lowest thresholds
                b = ctx.solve("earlier_intercept", lambda: calibrate(early_t, eligible, k))
                early = eligible & (early_t < b)
        before = ctx.rng("churn", "earlier-day").integers(0, self.earlier.days if self.earlier else 1, n)
        left = np.where(early, days_before(tl.start, before), np.datetime64("NaT", "us"))
        observed = np.where(early, left - DAY, tl.feature_date)
        env[self.label], env[self.date_column], env[self.cohort] = early, left, ~early
        env[self.observed] = observed
        env[self.joined] = days_before(observed, np.asarray(env[self.tenure]))

    def _pinned(self, ctx: RunContext, n: int) -> np.ndarray:
        """1 / 0 where a golden record pins the label, NaN elsewhere."""
        out = np.full(n, np.nan)
        if self.label in ctx.gold.pins:
            which, values = ctx.gold.pins[self.label]
            out[ctx.gold.rows[which]] = np.asarray(values, dtype=float)
        return out

    def row_checks(self) -> list:
        import pandera.pandas as pa

        return [(frozenset([self.label, self.date_column]),
                 pa.Check(lambda df: df[self.label] == df[self.date_column].notna(),
                          name=f"{self.date_column} set exactly for churners"))]

    def invariants(self, world, tables) -> list[dict]:
        """The label is the churn; nobody leaves before joining or after as_of."""
        partners = tables[world.table]
        label, when, joined = partners[self.label].to_numpy(), partners[self.date_column], partners[self.joined]
        return [
            {"invariant": f"{self.label} is true exactly when {self.date_column} is set",
             "violations": int(np.count_nonzero(label != when.notna().to_numpy()))},
            {"invariant": f"{self.date_column} after {self.joined} and on or before as_of",
             "violations": int(np.count_nonzero(when.notna() & ((when <= joined) | (when > world.as_of))))},
            {"invariant": f"{self.joined} on or before the feature date",
             "violations": int(np.count_nonzero(joined > world.feature_date))},
            *([{"invariant": f"{self.returned.column} only for a churner, after {self.date_column}, on or before as_of",
                "violations": int(np.count_nonzero(partners[self.returned.column].notna() & ~(
                    (partners[self.returned.column] > when) & (partners[self.returned.column] <= world.as_of))))}]
              if self.returned else []),
        ]

    def review(self, world, tables) -> StageReview:
        """The target rate among the cohort; the realized rate, the cohort's size, the early
        leavers, and the oracle's AUC (its truth column ranking the label)."""
        partners, r = tables[world.table], self.target_rate
        cohort = world.timeline.active(partners[self.date_column])
        m = int(cohort.sum())
        last = {"snapshot": str(np.datetime64(world.feature_date, "D"))} if world.timeline.snapshots > 1 else {}
        rate = Target(f"{self.name}.target_rate", r, partners.loc[cohort, self.label].mean() if m else 0,
                      np.sqrt(r * (1 - r) / max(m, 1)), m, "rate",
                      {**last, "note": "churn in the label window, among the partners active at the feature date"})
        realized = {"churn_rate": Rate(partners.loc[cohort, self.label].to_numpy(dtype=bool)),
                    "cohort": m, "left_before_feature_date": int((~cohort).sum())}
        headline = [Headline("churn_rate", "churn rate in the label window, among the cohort", "rate"),
                    Headline("cohort", "cohort (the partners active at the feature date)", "count")]
        if self.truth:
            realized["oracle_auc"] = Auc(partners.loc[cohort, self.label].to_numpy(),
                                         partners.loc[cohort, self.truth].to_numpy(dtype=float))
            headline.append(Headline("oracle_auc", f"oracle AUC (realized: {self.truth} ranking the label)"))
        calibrated = self.calibrated(world.timeline, world.timeline.snapshots - 1)
        returned = self._review_returned(world, partners, realized) if self.returned else []
        return StageReview([*self._snapshot_rates(world, partners), *([rate] if calibrated else []), *returned],
                           realized, tuple(headline))

    def _review_returned(self, world, partners, realized: dict) -> list[Target]:
        """The churners who returned beside the share the declaration implies for them: each
        returns by as_of with probability share x P(a geometric delay of mean days fits in the
        days from its churn to as_of) (the truth, so a young churn's censoring is integrated
        out, not a bias); realized.faults counts them."""
        r = self.returned
        gone = partners[self.date_column].to_numpy(dtype="datetime64[us]")
        churned = ~np.isnat(gone)
        room = (np.datetime64(world.as_of, "us") - gone[churned]) // np.timedelta64(1, "D")
        q = r.share * (1 - (1 - 1 / r.days) ** np.maximum(room, 0))
        back = partners[r.column].notna().to_numpy()[churned]
        m = int(churned.sum())
        realized["faults"] = {"reactivations": {"returned": {"churners": m, "returned": int(back.sum()),
                                                             "column": r.column}}}
        return [Target(f"{r.path}.share", float(q.mean()) if m else 0.0, float(back.mean()) if m else 0.0,
                       float(np.sqrt((q * (1 - q)).sum()) / max(m, 1)), m, "share",
                       {"note": f"churners with {r.column} set: the declared share {r.share} of those whose delay (mean "
                                f"{r.days:g} days) fits before as_of (expectation exact)"})]

    def calibrated(self, tl, k: int) -> bool:
        """Whether snapshot ``k``'s label window closes before the world's first shock acts
        (its churn rate then meets the target; from the shock on, the shocks move it)."""
        return phases(tl, self.frozen_from)[k] == "before"

    def _snapshot_rates(self, world, partners) -> list[Target]:
        """With a horizon: the target rate at every snapshot but the last (its own row above),
        among the partners active at it, churn in the label window after it."""
        tl, r = world.timeline, self.target_rate
        if tl.snapshots == 1:
            return []
        gone = partners[self.date_column].to_numpy(dtype="datetime64[us]")
        joined = partners[self.joined].to_numpy(dtype="datetime64[us]")
        out = []
        for k, day in enumerate(tl.snapshot_dates()[:-1]):
            if not self.calibrated(tl, k):
                continue
            active = tl.active_on(day, joined, gone)
            m = int(active.sum())
            churns = active & tl.churns_after(day, gone)
            date = str(np.datetime64(day, "D"))
            out.append(Target(f"{self.name}.snapshot.{date}.target_rate", r, churns.sum() / max(m, 1),
                              np.sqrt(r * (1 - r) / max(m, 1)), m, "rate",
                              {"snapshot": date, "note": "churn in the label window after the snapshot, among the "
                                                         "partners active at it"}))
        return out

    def figures(self, world, tables) -> list[FigureSpec]:
        """The cohort's survival over the label window (with a horizon of snapshots: over
        the horizon, from its start), overall and by latent road (the world's ``road`` role,
        which every partner has before its outcome; else the ``scenario`` role, which only
        churners have; none: overall only), beside the curve the target rate declares: the
        hazard q per episode with 1 - (1 - q) ** episodes = target_rate; with a horizon, the
        churn rate of every snapshot beside the target."""
        tl = world.timeline
        by = world.role("road") or world.role("scenario")
        span = "the label window" if tl.snapshots == 1 else f"the horizon ({tl.snapshots} snapshots)"
        out: list[FigureSpec] = [Survival(
            heading=f"Survival over {span} by {by or 'cohort'} (Kaplan–Meier)", table=world.table, start=tl.start,
            end=world.as_of, date=self.date_column, by=by, period_days=tl.episode_days,
            declared_hazard=float(episode_hazard(self.target_rate, tl.episodes)),
            title=f"survival of the partners active at {'the feature date' if tl.snapshots == 1 else 'its start'} "
                  f"({self.date_column})", joined=self.joined,
            since="the feature date" if tl.snapshots == 1 else "the first snapshot")]
        if tl.snapshots > 1:
            out.append(TargetBars(heading="Churn rate per snapshot", stage=self.name, suffix=".target_rate",
                                  label_key="snapshot", declared="target_rate", realized="realized churn rate",
                                  title="churn in the label window after each snapshot, among the partners "
                                        "active at it", value_label="churn rate"))
        return out


def _owned(label: str, probability: str, date: str, joined: str, observed: str, cohort: str) -> dict[str, Domain]:
    return {label: Domain("bool"), probability: Domain("float"), date: Domain("datetime", nullable=True),
            joined: Domain("datetime"), observed: Domain("datetime"), cohort: Domain("bool")}


def rules(p: Problems, path: str, rules: Any, numeric: bool) -> list[RuleSpec]:
    """Named rules (a mapping name -> rule; a rule set to null is left out): ``when`` a
    boolean expression, or with ``numeric`` also ``value``, and a ``weight``."""
    out = []
    if not isinstance(rules, Mapping) or not any(r is not None for r in rules.values()):
        p.add(path, "must declare at least one rule (a mapping of name -> rule)")
        return out
    for name, rpath, rule in named_entries(p, path, rules, "'when' and its settings"):
        if numeric and ("when" in rule) == ("value" in rule):
            p.add(rpath, "needs exactly one of 'when' (boolean) or 'value' (numeric)")
            continue
        if not numeric and "when" not in rule:
            p.add(rpath, "needs 'when' (a boolean expression)")
            continue
        key = "when" if "when" in rule else "value"
        expr = _compile(p, f"{rpath}.{key}", rule[key])
        weight = rule.get("weight", 0.0)
        if numeric and not _is_number(weight):
            p.add(f"{rpath}.weight", f"must be a number (log-odds), got {weight!r}")
            continue
        if expr is not None:
            out.append(RuleSpec(str(name), rpath, expr, float(weight), key == "when"))
    return out


class ChurnKind:
    name = "churn"
    defines_entity = False
    shape = {"kind": None, "label": None, "probability": None, "target_rate": None,
             "rules": Open({"when": None, "value": None, "weight": None}),
             "churn_date": {"column": None}, "treatment": None, "cohort": None,
             "earlier": {"days": None, "share": None, "when": None},
             "joined": {"column": None, "tenure_days": None}, "observed_until": None,
             "truth": None, "signal": None}

    def owns(self, group: str, c: Mapping) -> dict[str, Domain]:
        date, joined = c.get("churn_date") or {}, c.get("joined") or {}
        truth = c.get("truth")
        return {**_owned(str(c.get("label", "churn_label")), str(c.get("probability", "churn_probability")),
                         str(date.get("column", "churned_at")), str(joined.get("column", "created_at")),
                         str(c.get("observed_until", "observed_until")), str(c.get("cohort", "in_cohort"))),
                **({truth: Domain("float", nullable=True)} if isinstance(truth, str) else {})}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Churn | None:
        returned = ctx.reactivations()         # (claimed first: a churn group that fails says so once)
        if returned is not None:
            ctx.names.column(f"{returned.path}.column", returned.column)
        rate = c.get("target_rate")
        if not _is_number(rate) or not 0 < rate < 1:
            p.add(f"{group}.target_rate", f"must be a rate strictly between 0 and 1, got {rate!r}")
        parsed = rules(p, f"{group}.rules", c.get("rules"), numeric=True)
        earlier = None
        if c.get("earlier") is not None:
            e = c["earlier"]
            days = _int(p, f"{group}.earlier.days", e.get("days"), 1)
            share = e.get("share")
            if not _is_number(share) or not 0 <= share < 1:
                p.add(f"{group}.earlier.share", f"must be a share in [0, 1) of the partners who may leave "
                      f"early, got {share!r}")
            when = _compile(p, f"{group}.earlier.when", e["when"]) if e.get("when") is not None else None
            earlier = Earlier(days, float(share), when) if days is not None and _is_number(share) else None
        treatment = c.get("treatment")
        if treatment is not None and not isinstance(treatment, str):
            p.add(f"{group}.treatment", f"must name the interventions' realized-effect column or be null, got {treatment!r}")
        signal = c.get("signal", 1.0)
        if not _is_number(signal) or signal < 0:
            p.add(f"{group}.signal", f"must be a number >= 0 (0: churn is pure chance, 1: the rules' "
                  f"weights as declared), got {signal!r}")
        truth = c.get("truth")
        if truth is not None and not isinstance(truth, str):
            p.add(f"{group}.truth", f"must name the oracle probability column to write, or be null, got {truth!r}")
        date, joined = c.get("churn_date") or {}, c.get("joined") or {}
        for path, name in ((f"{group}.label", c.get("label", "churn_label")),
                           (f"{group}.probability", c.get("probability", "churn_probability")),
                           (f"{group}.churn_date.column", date.get("column", "churned_at")),
                           (f"{group}.joined.column", joined.get("column", "created_at")),
                           (f"{group}.observed_until", c.get("observed_until", "observed_until")),
                           (f"{group}.cohort", c.get("cohort", "in_cohort")), (f"{group}.truth", truth)):
            if name is not None:               # truth: null writes no oracle column
                ctx.names.column(path, name)
            if returned is not None and name == returned.column:
                p.add(f"{returned.path}.column", f"must name a new partners column, {name!r} is already one "
                      f"({path})")
        shifts = ctx.shock_effects("shift", group)
        for _, effect in shifts:
            if effect.target != group:
                p.add(f"{effect.path}.shift", f"shifts the churn hazard's log-odds: name the churn group "
                      f"({group!r}), got {effect.target!r}")
        if not _is_number(rate) or ctx.timeline is None or not _is_number(signal):
            return None
        return Churn(group, self.name, str(c.get("label", "churn_label")),
                     str(c.get("probability", "churn_probability")), float(rate), tuple(parsed),
                     str(date.get("column", "churned_at")), str(joined.get("column", "created_at")),
                     str(joined.get("tenure_days", "tenure_days")), str(c.get("observed_until", "observed_until")),
                     str(c.get("cohort", "in_cohort")), earlier, treatment,
                     truth if isinstance(truth, str) else None, float(signal), ctx.timeline.snapshots,
                     ctx.timeline.burn_in * ctx.timeline.episode_days, tuple(shifts), first_start(ctx.shocks),
                     returned)


KIND = ChurnKind()
