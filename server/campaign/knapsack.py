"""Budget allocation: pick at most one option per group to maximise margin within a budget.

This is a multiple-choice knapsack (a group is one product or one segment offer; its options
are discount levels). Exact solutions are pseudo-polynomial in the budget in cents, so we use
the classic greedy, which is deterministic and explains itself:

1. Per group, the upper convex hull of its (cost, margin) options, starting from "do nothing"
   (0, 0); options with margin <= 0, or costing more than the whole budget, are never
   taken. Walking the hull gives upgrade steps with falling margin per unit of cost.
2. All steps of all groups, sorted by margin per unit of cost (ties: group order, then step),
   are taken while they fit the remaining budget; a group whose next step does not fit stops.
3. Fill: each group in turn switches to its highest-margin option that the leftover budget
   pays for (any option, not only hull ones).
4. If the best single option alone beats the greedy plan, that option (then a fill) is the plan
   instead; this bounds the plan at half the optimum or better (without class caps).
Optionally groups belong to classes with a cap on chosen groups per class (contact pressure:
at most so many actions per customer segment); every step above skips a group whose class is
full, and after step 3 a pass swaps a chosen group for an unchosen one of the same class while that
raises the total margin within the budget.
Costs are integer cents, so the total never exceeds the budget, to the cent.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

ALGORITHM = (
    "greedy by expected margin per unit of budget (multiple-choice knapsack: convex-hull "
    "upgrade steps over each action's discount levels), then a fill pass with the leftover "
    "budget, and the best single action instead when it alone beats that plan; at most "
    "{per_segment} action(s) per customer segment, swapping within a segment while that "
    "raises the margin"
)


@dataclass(frozen=True)
class Option:
    cost_cents: int  # >= 0
    margin: float


def _hull(options: Sequence[Option], budget_cents: int) -> list[int]:
    """Indexes of the options on the upper-left convex hull above (0, 0), by rising cost."""
    candidates = sorted(
        (i for i, o in enumerate(options) if o.margin > 0 and o.cost_cents <= budget_cents),
        key=lambda i: (options[i].cost_cents, -options[i].margin, i),
    )
    chain: list[int] = []
    best = 0.0
    for i in candidates:  # keep only options that add margin for their extra cost
        if options[i].margin > best:
            chain.append(i)
            best = options[i].margin

    def point(k: int | None) -> tuple[float, float]:
        return (0.0, 0.0) if k is None else (float(options[k].cost_cents), options[k].margin)

    hull: list[int] = []
    for i in chain:
        while hull:
            (x0, y0) = point(hull[-2] if len(hull) > 1 else None)
            (x1, y1) = point(hull[-1])
            (x2, y2) = point(i)
            if (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0) >= 0:  # hull[-1] not above the chord
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def _ratio(d_margin: float, d_cost: int) -> float:
    return float("inf") if d_cost == 0 else d_margin / d_cost


class _Caps:
    """At most `per_class` chosen groups per class (e.g. per customer segment)."""

    def __init__(self, classes: Sequence[Hashable] | None, per_class: int | None) -> None:
        self.classes = classes
        self.per_class = per_class
        self.used: dict[Hashable, int] = {}

    def allows(self, g: int, chosen: Sequence[int | None]) -> bool:
        if self.classes is None or self.per_class is None or chosen[g] is not None:
            return True
        return self.used.get(self.classes[g], 0) < self.per_class

    def take(self, g: int, chosen: Sequence[int | None]) -> None:
        if self.classes is not None and chosen[g] is None:
            key = self.classes[g]
            self.used[key] = self.used.get(key, 0) + 1


def _fill(
    groups: Sequence[Sequence[Option]], chosen: list[int | None], remaining: int, caps: _Caps
) -> int:
    for g, options in enumerate(groups):
        if not caps.allows(g, chosen):
            continue
        current = chosen[g]
        cost_now = options[current].cost_cents if current is not None else 0
        margin_now = options[current].margin if current is not None else 0.0
        best = current
        for i, o in enumerate(options):
            if o.cost_cents - cost_now > remaining or o.margin <= 0:
                continue
            b = options[best] if best is not None else None
            if b is None or (o.margin, -o.cost_cents) > (b.margin, -b.cost_cents):
                best = i
        if best is not None and options[best].margin > margin_now:
            remaining -= options[best].cost_cents - cost_now
            caps.take(g, chosen)
            chosen[g] = best
    return remaining


def _swap_within_classes(
    groups: Sequence[Sequence[Option]], chosen: list[int | None], budget_cents: int, caps: _Caps
) -> None:
    """While it raises the margin and fits: swap a chosen group for an unchosen one of its
    class (a full class blocked better groups that came later in ratio order)."""
    if caps.classes is None or caps.per_class is None:
        return
    classes = caps.classes
    for _ in range(len(groups)):
        spent = sum(groups[g][i].cost_cents for g, i in enumerate(chosen) if i is not None)
        best: tuple[float, int, int, int] | None = None
        for g, i in enumerate(chosen):
            if i is None or caps.used.get(classes[g], 0) < caps.per_class:
                continue
            old = groups[g][i]
            for h, options in enumerate(groups):
                if chosen[h] is not None or classes[h] != classes[g]:
                    continue
                for j, o in enumerate(options):
                    gain = o.margin - old.margin
                    fits = spent - old.cost_cents + o.cost_cents <= budget_cents
                    if fits and gain > 1e-9 and (best is None or gain > best[0]):
                        best = (gain, g, h, j)
        if best is None:
            return
        _, g, h, j = best
        chosen[g], chosen[h] = None, j
        spent = sum(groups[k][i].cost_cents for k, i in enumerate(chosen) if i is not None)
        _fill(groups, chosen, budget_cents - spent, caps)


def _total(groups: Sequence[Sequence[Option]], chosen: Sequence[int | None]) -> float:
    return sum(groups[g][i].margin for g, i in enumerate(chosen) if i is not None)


def allocate(
    groups: Sequence[Sequence[Option]],
    budget_cents: int,
    classes: Sequence[Hashable] | None = None,
    per_class: int | None = None,
) -> list[int | None]:
    """Chosen option index per group (None = no action), total cost <= budget_cents.

    With `classes` (one key per group) and `per_class`, at most that many groups of one class
    are chosen; the greedy then simply skips groups whose class is full.
    """
    hulls = [_hull(options, budget_cents) for options in groups]
    steps: list[tuple[float, int, int]] = []
    for g, hull in enumerate(hulls):
        prev_cost, prev_margin = 0, 0.0
        for s, i in enumerate(hull):
            o = groups[g][i]
            steps.append((_ratio(o.margin - prev_margin, o.cost_cents - prev_cost), g, s))
            prev_cost, prev_margin = o.cost_cents, o.margin
    steps.sort(key=lambda t: (-t[0], t[1], t[2]))

    caps = _Caps(classes, per_class)
    chosen: list[int | None] = [None] * len(groups)
    level = [-1] * len(groups)
    stopped = [False] * len(groups)
    remaining = budget_cents
    for _, g, s in steps:
        if stopped[g] or level[g] != s - 1 or not caps.allows(g, chosen):
            stopped[g] = True
            continue
        cost_now = groups[g][chosen[g]].cost_cents if chosen[g] is not None else 0
        target = hulls[g][s]
        extra = groups[g][target].cost_cents - cost_now
        if extra > remaining:
            stopped[g] = True
            continue
        remaining -= extra
        caps.take(g, chosen)
        chosen[g], level[g] = target, s
    _fill(groups, chosen, remaining, caps)
    _swap_within_classes(groups, chosen, budget_cents, caps)

    single: tuple[float, int, int] | None = None
    for g, options in enumerate(groups):
        for i, o in enumerate(options):
            fits = o.cost_cents <= budget_cents and o.margin > 0
            if fits and (single is None or o.margin > single[0]):
                single = (o.margin, g, i)
    if single is not None and single[0] > _total(groups, chosen):
        alone: list[int | None] = [None] * len(groups)
        caps = _Caps(classes, per_class)
        caps.take(single[1], alone)
        alone[single[1]] = single[2]
        _fill(groups, alone, budget_cents - groups[single[1]][single[2]].cost_cents, caps)
        return alone
    return chosen
