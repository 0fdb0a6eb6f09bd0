"""A backtest: train a churn model on a horizon's first snapshots, score every snapshot, and
let ``simulator.evaluate`` grade each against its own labels and exact truth.

    python -m simulator experiment=horizon hydra.run.dir=runs/horizon
    python examples/backtest.py runs/horizon [--train 3]
    python -m simulator.evaluate runs/horizon --predictions runs/horizon/backtest_predictions.parquet

The model sees the snapshots' features only (``run.X_y``: no key, label, scenario or
truth); the predictions carry ``snapshot_date``, so evaluate writes ``by_snapshot`` (AUC,
Brier, calibration and both oracles per snapshot) and ``stability`` (the AUC's range and
trend), and its page draws them over time.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from simulator import load_run


def backtest(run_dir: str | Path, train: int = 3) -> Path:
    """Fit on the first ``train`` snapshots, score them all; the predictions' file."""
    run = load_run(run_dir)
    dates = run.snapshots()
    if len(dates) <= train:
        raise SystemExit(f"{run_dir}: {len(dates)} snapshots, none left to test after training on {train} "
                         f"(run a horizon: python -m simulator experiment=horizon)")
    seen = [run.X_y(day) for day in dates[:train]]
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    model.fit(pd.concat([x for x, _ in seen]), pd.concat([y for _, y in seen]))
    scored = []
    for day in dates:
        x, _ = run.X_y(day)
        scored.append(pd.DataFrame({run.spec.key: x.index, "snapshot_date": day,
                                    "churn_probability": model.predict_proba(x)[:, 1]}))
    out = Path(run_dir) / "backtest_predictions.parquet"
    pd.concat(scored, ignore_index=True).to_parquet(out, index=False)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", help="a run with several snapshots (timeline.snapshots)")
    ap.add_argument("--train", type=int, default=3, help="snapshots to train on, the first ones (default 3)")
    args = ap.parse_args()
    print(backtest(args.run_dir, args.train))
