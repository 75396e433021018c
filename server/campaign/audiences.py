"""Segment audiences over the customer feature snapshot: who is in each segment, what they buy.

Segments come from the segmentation model's clusters (named by its manifest), churn risk from
the churn model's probability against its HIGH risk threshold. Scoring the whole snapshot is
done once per (snapshot, segmentation, churn) version triple and cached: the snapshot does not
change between reloads of other models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from crm.features import CATEGORY_SHARE_PREFIX
from server.campaign.types import Audience, Segment, SegmentProfile

BASKET = "avg_basket_value"
UNITS = "avg_units_per_invoice"
LINES = "avg_lines_per_invoice"
NEEDED = (BASKET, UNITS, LINES)


def _audience(values: np.ndarray, members: np.ndarray) -> Audience:
    """values: [n, 3] columns NEEDED; members: boolean mask."""
    chosen = values[members]
    buyers = chosen[chosen[:, 0] > 0]  # customers with at least one sale
    if not len(buyers):
        return Audience(int(members.sum()), 0.0, 0.0, 0.0)
    units, lines = float(buyers[:, 1].sum()), float(buyers[:, 2].sum())
    return Audience(
        customers=int(members.sum()),
        avg_basket_value=float(buyers[:, 0].mean()),
        avg_units_per_invoice=float(buyers[:, 1].mean()),
        units_per_line=units / lines if lines > 0 else 0.0,
    )


def build_profiles(
    feature_names: Sequence[str],
    values: np.ndarray,
    clusters: np.ndarray,
    segment_of_cluster: Mapping[int, tuple[Segment, str]],
    *,
    churn_probability: np.ndarray | None = None,
    churn_threshold: float | None = None,
) -> list[SegmentProfile]:
    """One profile per named segment present (clusters sharing a name are pooled)."""
    index = {n: i for i, n in enumerate(feature_names)}
    missing = [n for n in NEEDED if n not in index]
    if missing:
        raise KeyError(f"feature snapshot lacks {', '.join(missing)}")
    base = np.asarray(values[:, [index[n] for n in NEEDED]], dtype=np.float64)
    categories = [
        n[len(CATEGORY_SHARE_PREFIX) :]
        for n in feature_names
        if n.startswith(CATEGORY_SHARE_PREFIX)
    ]
    shares = np.asarray(
        values[:, [index[CATEGORY_SHARE_PREFIX + c] for c in categories]], dtype=np.float64
    ).reshape(len(values), len(categories))
    clusters = np.asarray(clusters, dtype=np.int64).reshape(-1)
    by_name: dict[tuple[Segment, str], np.ndarray] = {}
    for cluster in sorted(set(clusters.tolist())):
        key = segment_of_cluster.get(cluster, (Segment.UNSPECIFIED, f"cluster {cluster}"))
        mask = clusters == cluster
        by_name[key] = by_name[key] | mask if key in by_name else mask
    at_risk = None
    if churn_probability is not None and churn_threshold is not None:
        at_risk = np.asarray(churn_probability, dtype=np.float64).reshape(-1) >= churn_threshold
    profiles = []
    for (segment, name), members in sorted(by_name.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        member_shares = shares[members]
        profiles.append(
            SegmentProfile(
                segment=segment,
                name=name,
                everyone=_audience(base, members),
                category_affinity={
                    c: float(member_shares[:, j].mean()) for j, c in enumerate(categories)
                },
                category_buyers={
                    c: _audience(base, members & (shares[:, j] > 0))
                    for j, c in enumerate(categories)
                },
                churn_risk=_audience(base, members & at_risk) if at_risk is not None else None,
                churn_threshold=churn_threshold if at_risk is not None else None,
            )
        )
    return profiles
