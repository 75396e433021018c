"""`crm-client campaign ...`: plan campaigns and list saved ones from the command line."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from typing import Any

from clients.campaign import read_inventory_csv
from clients.campaign_types import Plan
from clients.client import CrmClient
from clients.errors import CrmError

CHANNELS = ("email", "sms", "whatsapp")


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _cover(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:,.1f}"


def format_plan(plan: Plan, explain: bool = True) -> str:
    """The plan as a fixed-width table, totals, and (optionally) each action's rationale."""
    cur = plan.currency or "money"
    header = (
        f"{'#':>3}  {'kind':<6} {'objective':<17} {'product':<10} {'segment':<10} {'audience':>8} "
        f"{'channel':<8} {'disc':>5} {'+units':>8} {'revenue':>11} {'margin':>11} {'budget':>10}"
    )
    lines = [header, "-" * len(header)]
    for a in plan.actions:
        lines.append(
            f"{a.rank:>3}  {'advice' if a.advisory else 'paid':<6} {a.objective:<17} "
            f"{a.product_id or '-':<10} "
            f"{a.target_segment_name or '-':<10} {a.audience_size:>8} "
            f"{a.channel.lower() if a.channel != 'UNSPECIFIED' else '-':<8} "
            f"{a.discount * 100:>4.0f}% {a.expected_extra_units:>8,.1f} "
            f"{_money(a.expected_revenue):>11} {_money(a.expected_margin):>11} "
            f"{_money(a.budget_used):>10}"
        )
    if not plan.actions:
        lines.append("  (no actions)")
    lines.append("-" * len(header))
    lines.append(
        f"budget {_money(plan.budget)} {cur}, used {_money(plan.budget_used)}, "
        f"expected margin {_money(plan.expected_margin)} {cur}"
    )
    advice = sum(a.advisory for a in plan.actions)
    lines.append(
        f"actions: {len(plan.actions) - advice} paid, {advice} advisory (advice for you: no "
        "channel, audience or budget)"
    )
    counts: dict[str, int] = {}
    for i in plan.inventory:
        counts[i.status] = counts.get(i.status, 0) + 1
    lines.append(
        "inventory: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        if counts
        else "inventory: none"
    )
    lines.append("models: " + ", ".join(f"{m.name} v{m.version}" for m in plan.models))
    lines.append(f"algorithm: {plan.algorithm}")
    if explain and plan.actions:
        lines.append("")
        lines.extend(f"{a.rank:>3}. {a.rationale}" for a in plan.actions)
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"crm-client: {message}", file=sys.stderr)
    return 2


def _plan(args: argparse.Namespace, crm: CrmClient) -> int:
    try:
        inventory = read_inventory_csv(args.inventory) if args.inventory else []
    except (OSError, ValueError) as err:
        return _fail(f"cannot read the inventory: {err}")
    client = crm.campaign
    try:
        plan = client.plan_campaigns(
            args.budget,
            horizon_days=args.horizon_days,
            max_discount=args.max_discount,
            min_margin=args.min_margin,
            channels=args.channel or (),
            inventory=inventory,
        )
        saved = client.save_campaign(args.save, plan, notes=args.notes) if args.save else None
    except CrmError as err:
        print(f"crm-client: {err}", file=sys.stderr)
        for v in err.violations:
            where = _inventory_row(v.field, args.inventory)
            print(f"  {where}: {v.description}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(plan), indent=2, default=_json_default))
    else:
        print(format_plan(plan, explain=not args.brief))
    if saved is not None:
        print(f"saved as {saved.id} ({saved.name})", file=sys.stderr)
    return 0


def _inventory_row(field: str, path: str | None) -> str:
    """`inventory[2].stock_on_hand` -> also name the CSV line it came from."""
    if path and field.startswith("inventory["):
        index = field[len("inventory[") : field.index("]")]
        if index.isdigit():
            return f"{field} ({path} line {int(index) + 2})"
    return field


def _list(args: argparse.Namespace, crm: CrmClient) -> int:
    try:
        page = crm.campaign.list_campaigns(args.page_size, args.page_token)
    except CrmError as err:
        return _fail(str(err))
    print(f"{'created (UTC)':<20} {'id':<32}  {'actions':>7} {'margin':>11}  name")
    for c in page.campaigns:
        print(
            f"{c.created_at:%Y-%m-%d %H:%M:%S}  {c.id:<32}  {len(c.plan.actions):>7} "
            f"{_money(c.plan.expected_margin):>11}  {c.name}"
        )
    if page.next_page_token:
        print(f"more: --page-token {page.next_page_token}")
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return str(value)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be a fraction 0..1 (0.3 = 30%)")
    return value


def register(subparsers: Any) -> None:
    """Adds `campaign plan` and `campaign list`; each `func(args, client: CrmClient) -> exit code`."""
    campaign = subparsers.add_parser("campaign", help="plan campaigns, list saved ones")
    sub = campaign.add_subparsers(dest="campaign_command", required=True)

    plan = sub.add_parser(
        "plan",
        help="a budget-bounded campaign plan as a table",
        description="Plans campaigns within a budget. The inventory CSV has columns product_id, "
        "stock_on_hand, unit_cost, unit_price, units_on_order, lead_time_days, category "
        "(the last three optional); without it the server uses its default snapshot.",
    )
    plan.add_argument("--budget", type=float, required=True, help="money for discounts+contacts")
    plan.add_argument("--inventory", help="inventory CSV file (default: the server's snapshot)")
    plan.add_argument("--horizon-days", type=int, default=7, help="days the plan covers, 1..7")
    plan.add_argument(
        "--max-discount",
        type=_fraction,
        default=None,
        help="largest discount, 0..1 (default: unset, the server's default); 0 = no discount",
    )
    plan.add_argument("--min-margin", type=_fraction, default=0.0, help="margin floor, 0..1")
    plan.add_argument(
        "--channel", action="append", choices=CHANNELS, help="channel to use (repeat); default all"
    )
    plan.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    plan.add_argument("--brief", action="store_true", help="table only, no rationales")
    plan.add_argument("--save", metavar="NAME", help="also save the plan under this name")
    plan.add_argument("--notes", default="", help="notes saved with --save")
    plan.set_defaults(func=_plan)

    listing = sub.add_parser("list", help="saved campaigns, newest first")
    listing.add_argument("--page-size", type=int, default=20, help="1..100")
    listing.add_argument("--page-token", default="", help="from a previous listing")
    listing.set_defaults(func=_list)
