"""The typed API's rules for feature values: finite, and >= 0 except for signed features.

One check for every way rows arrive (named features, a columnar batch, a tensor protocol), so
each reports the same violation for the same value.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from crm import features as feat
from server.errors import MAX_VIOLATIONS, FieldViolation, InvalidArgument


@functools.lru_cache(maxsize=64)
def _signed_mask(names: tuple[str, ...]) -> np.ndarray:
    return np.array([n in feat.SIGNED_FEATURES for n in names], dtype=bool)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


@functools.lru_cache(maxsize=64)
def _lower_bounds(names: tuple[str, ...]) -> np.ndarray:
    """Per-feature lowest valid value: the most negative float32 for signed features, 0 for
    counts and amounts (so -inf fails too)."""
    return np.where(_signed_mask(names), -_FLOAT32_MAX, 0.0).astype(np.float32)


def check_values(
    values: np.ndarray,
    names: Sequence[str],
    path_of: Callable[[int, str], str],
    problems: list[FieldViolation],
) -> None:
    """NaN, infinities and negative counts, reported per row and feature."""
    key = tuple(names)
    # The common case, in four numpy calls: NaN fails both bounds, infinities one of them.
    # Comparisons never warn (a sum would, on overflow).
    if (values >= _lower_bounds(key)).all() and (values <= _FLOAT32_MAX).all():
        return
    signed = _signed_mask(key)
    bad_finite = ~np.isfinite(values)
    bad_sign = (values < 0) & ~signed[None, :] & ~bad_finite
    for r, c in zip(*np.nonzero(bad_finite | bad_sign), strict=True):
        if len(problems) >= MAX_VIOLATIONS:
            return
        why = "must be a finite number" if bad_finite[r, c] else "must be >= 0"
        problems.append(FieldViolation(path_of(int(r), names[int(c)]), why))


def check_matrix(matrix: np.ndarray, names: Sequence[str], field: str) -> None:
    """The typed API's value rules for a raw [N, F] matrix (tensor protocols): INVALID_ARGUMENT
    naming `field[row].feature` for each NaN, infinity or negative count."""
    problems: list[FieldViolation] = []
    with np.errstate(over="ignore"):
        check_values(matrix, names, lambda r, n: f"{field}[{r}].{n}", problems)
    if problems:
        raise InvalidArgument(problems)
