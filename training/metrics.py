"""Evaluation metrics, each a plain function of arrays (numbers go into the manifest)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def _f(value: float) -> float:
    return float(round(float(value), 6))


def classification(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), Brier score and log loss of probabilities."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return {
        "roc_auc": _f(roc_auc_score(y, p)),
        "pr_auc": _f(average_precision_score(y, p)),
        "brier": _f(brier_score_loss(y, p)),
        "log_loss": _f(log_loss(y, p, labels=[0, 1])),
        "positive_rate": _f(np.mean(y)),
        "mean_prediction": _f(np.mean(p)),
        "rows": len(y),
    }


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation with average ranks for ties (0 when either side is constant)."""
    ra = _ranks(np.asarray(a, dtype=np.float64))
    rb = _ranks(np.asarray(b, dtype=np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(x)]])
    average = (starts + ends - 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, Spearman, WAPE and totals of a non-negative amount forecast."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    err = pred - y
    total = float(y.sum())
    return {
        "mae": _f(np.abs(err).mean()),
        "rmse": _f(np.sqrt((err**2).mean())),
        "spearman": _f(spearman(y, pred)),
        "wape": _f(np.abs(err).sum() / total) if total > 0 else float("nan"),
        "total_predicted": _f(pred.sum()),
        "total_actual": _f(total),
        "total_ratio": _f(pred.sum() / total) if total > 0 else float("nan"),
        "rows": len(y),
    }


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Calibration table: rows grouped by predicted probability in equal-width bins; each bin's
    count, mean prediction and observed rate (empty bins are left out)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    table = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            table.append(
                {
                    "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                    "rows": int(inside.sum()),
                    "mean_predicted": _f(p[inside].mean()),
                    "observed_rate": _f(y[inside].mean()),
                }
            )
    return table


def deciles(y: np.ndarray, pred: np.ndarray) -> list[dict[str, float]]:
    """Rows ranked by prediction into ten groups: predicted and actual totals of each."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    order = np.argsort(-pred, kind="mergesort")
    out = []
    for k, idx in enumerate(np.array_split(order, 10)):
        if len(idx):
            out.append(
                {
                    "decile": k + 1,
                    "rows": len(idx),
                    "predicted_total": _f(pred[idx].sum()),
                    "actual_total": _f(y[idx].sum()),
                }
            )
    return out
