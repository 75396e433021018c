"""The budget allocator against brute force on small instances."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from server.campaign.knapsack import Option, allocate

options = st.builds(Option, st.integers(0, 60), st.floats(-20, 100, allow_nan=False))
groups_st = st.lists(st.lists(options, min_size=1, max_size=4), min_size=0, max_size=5)


def brute_force(groups: list[list[Option]], budget: int) -> float:
    best = 0.0
    for pick in itertools.product(*[[None, *range(len(g))] for g in groups]):
        cost = sum(groups[g][i].cost_cents for g, i in enumerate(pick) if i is not None)
        margin = sum(groups[g][i].margin for g, i in enumerate(pick) if i is not None)
        if cost <= budget:
            best = max(best, margin)
    return best


def evaluate(groups: list[list[Option]], chosen: list[int | None]) -> tuple[int, float]:
    picked = [groups[g][i] for g, i in enumerate(chosen) if i is not None]
    return sum(o.cost_cents for o in picked), sum(o.margin for o in picked)


@settings(max_examples=300, deadline=None)
@given(groups_st, st.integers(0, 150))
def test_feasible_and_at_least_half_the_optimum(groups: list[list[Option]], budget: int) -> None:
    chosen = allocate(groups, budget)
    assert len(chosen) == len(groups)
    cost, margin = evaluate(groups, chosen)
    assert cost <= budget
    assert all(groups[g][i].margin > 0 for g, i in enumerate(chosen) if i is not None)
    assert margin >= 0.5 * brute_force(groups, budget) - 1e-9
    assert allocate(groups, budget) == chosen


@given(groups_st)
def test_ample_budget_takes_each_groups_best_option(groups: list[list[Option]]) -> None:
    chosen = allocate(groups, 10_000)
    for g, options in enumerate(groups):
        best = max(o.margin for o in options)
        if best <= 0:
            assert chosen[g] is None
        else:
            assert options[chosen[g]].margin == best  # type: ignore[index]


def test_small_high_ratio_item_does_not_block_a_big_one() -> None:
    groups = [[Option(1, 2.0)], [Option(100, 150.0)]]
    assert allocate(groups, 100) == [None, 0]
    assert allocate(groups, 101) == [0, 0]


def test_upgrades_follow_marginal_ratio() -> None:
    # Group 0: 10 -> 30 margin for +10; group 1: 20 for 10. Budget 20: best is g0 at 20 (30).
    groups = [[Option(10, 10.0), Option(20, 30.0)], [Option(10, 20.0)]]
    chosen = allocate(groups, 20)
    assert evaluate(groups, chosen) == (20, 30.0)


@settings(max_examples=200, deadline=None)
@given(groups_st, st.integers(0, 150), st.integers(1, 2), st.data())
def test_class_caps_are_respected(
    groups: list[list[Option]], budget: int, cap: int, data: st.DataObject
) -> None:
    classes = [data.draw(st.sampled_from("ab")) for _ in groups]
    chosen = allocate(groups, budget, classes, cap)
    cost, _ = evaluate(groups, chosen)
    assert cost <= budget
    for c in "ab":
        assert sum(1 for g, i in enumerate(chosen) if i is not None and classes[g] == c) <= cap


def test_cap_keeps_the_better_group_of_a_class() -> None:
    groups = [[Option(10, 5.0)], [Option(10, 50.0)], [Option(10, 7.0)]]
    assert allocate(groups, 100, ["s", "s", "t"], 1) == [None, 0, 0]
    assert allocate(groups, 100) == [0, 0, 0]
