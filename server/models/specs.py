"""Typed serving specs: the manifest's `serving` section, parsed and checked once at load.

A version whose spec does not parse, or does not fit its model's features, is refused by the
registry like a bad checksum (`ArtifactError`), so a request never meets a half-valid manifest.
Handlers read these frozen dataclasses instead of `.get` on a dict in every call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm.artifacts import DEFAULT_RISK_THRESHOLDS, ArtifactError
from crm.demand import demand_feature_names
from crm.features import RFM_FEATURES
from crm.line_features import CATEGORY_FLAG_PREFIX, line_feature_names

RFM = RFM_FEATURES
RFM_EDGES = 4  # quintile edges per RFM input


def _section(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    section = manifest.get("serving") or {}
    if not isinstance(section, Mapping):
        raise ValueError("serving must be an object")
    return section


def _categories(serving: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(c) for c in serving.get("categories") or ())


def risk_thresholds(raw: object) -> tuple[float, float, float]:
    values = tuple(float(v) for v in raw or DEFAULT_RISK_THRESHOLDS)  # type: ignore[attr-defined]
    if len(values) != 3 or not 0 < values[0] < values[1] < values[2] < 1:
        raise ValueError(f"risk_thresholds must be three increasing probabilities, got {raw}")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class ChurnSpec:
    horizon_days: int
    risk_thresholds: tuple[float, float, float]  # (medium, high, critical) lower bounds
    monetary_column: int | None  # where net spend sits in the feature row (high value rule)

    @classmethod
    def parse(cls, serving: Mapping[str, Any], features: Sequence[str]) -> ChurnSpec:
        return cls(
            horizon_days=int(serving.get("churn_days", 0)),
            risk_thresholds=risk_thresholds(serving.get("risk_thresholds")),
            monetary_column=list(features).index("monetary") if "monetary" in features else None,
        )


@dataclass(frozen=True)
class SpendSpec:
    horizon_days: int
    currency: str
    categories: tuple[str, ...]  # the order of the per-category outputs after the total

    @classmethod
    def parse(cls, serving: Mapping[str, Any], features: Sequence[str]) -> SpendSpec:
        return cls(
            int(serving.get("horizon_days", 0)),
            str(serving.get("currency", "")),
            _categories(serving),
        )


@dataclass(frozen=True)
class Segment:
    name: str
    action: str


@dataclass(frozen=True)
class SegmentationSpec:
    currency: str
    rfm_edges: Mapping[str, tuple[float, ...]]
    rfm_columns: tuple[int, int, int]  # recency, frequency, monetary in the feature row
    segments: Mapping[int, Segment]  # cluster id -> segment, named at training time

    @classmethod
    def parse(cls, serving: Mapping[str, Any], features: Sequence[str]) -> SegmentationSpec:
        missing = [n for n in RFM if n not in features]
        if missing:
            raise ValueError(f"the model lacks RFM features {missing}")
        raw_edges = serving.get("rfm_edges") or {}
        edges = {n: tuple(float(e) for e in raw_edges.get(n, ())) for n in RFM}
        if any(len(e) != RFM_EDGES or list(e) != sorted(e) for e in edges.values()):
            raise ValueError(f"rfm_edges needs {RFM_EDGES} increasing edges for each of {RFM}")
        segments = {
            int(k): Segment(str(v["segment"]), str(v.get("action", "")))
            for k, v in (serving.get("segments") or {}).items()
        }
        columns = tuple(list(features).index(n) for n in RFM)
        return cls(str(serving.get("currency", "")), edges, columns, segments)  # type: ignore[arg-type]

    def segment(self, cluster: int) -> Segment:
        return self.segments.get(cluster, _NO_SEGMENT)


_NO_SEGMENT = Segment("", "")


@dataclass(frozen=True)
class RevenueSpec:
    currency: str
    categories: tuple[str, ...]

    @classmethod
    def parse(cls, serving: Mapping[str, Any], features: Sequence[str]) -> RevenueSpec:
        categories = _categories(serving)
        if list(features) != line_feature_names(categories):
            raise ValueError("the revenue model's features are not crm.line_features' list")
        return cls(str(serving.get("currency", "")), categories)


@dataclass(frozen=True)
class DemandSpec:
    currency: str
    categories: tuple[str, ...]

    @classmethod
    def parse(cls, serving: Mapping[str, Any], features: Sequence[str]) -> DemandSpec:
        categories = tuple(
            n[len(CATEGORY_FLAG_PREFIX) :] for n in features if n.startswith(CATEGORY_FLAG_PREFIX)
        )
        if list(features) != demand_feature_names(categories):
            raise ValueError("the demand model's features are not crm.demand's feature list")
        return cls(str(serving.get("currency", "")), categories)


Spec = ChurnSpec | SpendSpec | SegmentationSpec | RevenueSpec | DemandSpec
PARSERS: dict[str, Callable[[Mapping[str, Any], Sequence[str]], Spec]] = {
    "churn": ChurnSpec.parse,
    "spend": SpendSpec.parse,
    "segmentation": SegmentationSpec.parse,
    "revenue": RevenueSpec.parse,
    "demand": DemandSpec.parse,
}


def parse_spec(name: str, manifest: Mapping[str, Any], features: Sequence[str]) -> Spec | None:
    """The typed spec of model `name` (None for a model no handler serves); ArtifactError when
    the manifest's serving section is not what the handler needs."""
    parse = PARSERS.get(name)
    if parse is None:
        return None
    try:
        return parse(_section(manifest), features)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise ArtifactError(f"{name}: invalid serving spec: {err}") from None
