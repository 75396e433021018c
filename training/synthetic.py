"""The built-in default data: a deterministic synthetic retailer with realistic customer lives.

The story, per customer (BG/NBD with gamma-gamma spend):
  - acquired on a staggered day (a third at the start, the rest spread over the period);
  - buys at an individual Poisson rate (gamma-distributed across customers), modulated by
    weekly seasonality (own weekend propensity) and yearly seasonality (November peak);
  - after every purchase drops out for good with an individual probability (beta-distributed);
  - each basket's value is gamma-distributed around the customer's own mean;
  - lines pick a category by the customer's taste times the category's season, then a product
    by popularity among those on sale that day (products launch and are discontinued);
  - lines are returned with a probability that grows with the category's return rate, the
    item's price within its category, the quantity and the customer's own propensity.
A little dirt is added so the cleaning rules have work: guest invoices without a customer id,
postage lines, free samples at price 0 and exact duplicate lines.
Everything is drawn from one numpy Generator seeded by `seed`, so a seed fixes every byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from crm.columns import (
    CATEGORY,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    EXPORT_COLUMNS,
    INVOICE,
    INVOICE_DATE,
    PRICE,
    QUANTITY,
    STOCK_CODE,
)
from crm.inventory import INVENTORY_COLUMNS

CATEGORIES: tuple[str, ...] = ("electronics", "fashion", "grocery", "home", "sports")


@dataclass(frozen=True)
class CategoryProfile:
    median_price: float
    price_sigma: float
    product_share: float
    taste: float
    return_rate: float
    peak_day_of_year: float
    peak_width_days: float
    peak_amplitude: float


PROFILES: dict[str, CategoryProfile] = {
    "electronics": CategoryProfile(24.0, 0.6, 0.15, 0.8, 0.08, 330, 20, 1.2),
    "fashion": CategoryProfile(9.0, 0.5, 0.2, 1.0, 0.10, 110, 40, 0.5),
    "grocery": CategoryProfile(2.5, 0.4, 0.25, 1.6, 0.01, 355, 12, 0.4),
    "home": CategoryProfile(7.0, 0.5, 0.25, 1.2, 0.04, 340, 30, 0.8),
    "sports": CategoryProfile(12.0, 0.5, 0.15, 0.7, 0.05, 175, 45, 0.7),
}
_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "electronics": (
        ("WIRELESS", "COMPACT", "SMART", "PORTABLE", "USB", "DIGITAL"),
        ("SPEAKER", "HEADPHONES", "CHARGER", "LAMP", "CLOCK", "RADIO", "KEYBOARD"),
    ),
    "fashion": (
        ("VINTAGE", "KNITTED", "STRIPED", "LINEN", "FLORAL", "LEATHER"),
        ("SCARF", "TOTE BAG", "HAT", "GLOVES", "BELT", "SOCKS", "PURSE"),
    ),
    "grocery": (
        ("ORGANIC", "FRESH", "DARK", "SPICED", "HERBAL", "CLASSIC"),
        ("TEA", "COFFEE", "CHOCOLATE", "BISCUITS", "JAM", "HONEY", "PASTA"),
    ),
    "home": (
        ("WHITE", "RUSTIC", "CERAMIC", "HANGING", "GLASS", "WOODEN"),
        ("CANDLE HOLDER", "MUG", "VASE", "CUSHION", "FRAME", "BOWL", "LANTERN"),
    ),
    "sports": (
        ("PRO", "LIGHTWEIGHT", "TRAINING", "OUTDOOR", "YOGA", "CLASSIC"),
        ("BALL", "BOTTLE", "MAT", "BAND", "GLOVES", "SKIPPING ROPE", "CAP"),
    ),
}
COUNTRIES: tuple[str, ...] = (
    "United Kingdom",
    "Germany",
    "France",
    "EIRE",
    "Netherlands",
    "Spain",
    "Belgium",
    "Switzerland",
)
_COUNTRY_WEIGHTS = np.array([0.86, 0.035, 0.03, 0.025, 0.015, 0.012, 0.012, 0.011])
_HOUR_WEIGHTS = np.array([2, 5, 8, 10, 12, 11, 10, 9, 8, 6, 4, 2], dtype=np.float64)
_HOURS = np.arange(8, 20)
FIRST_INVOICE = 500_000


@dataclass(frozen=True)
class SyntheticConfig:
    customers: int = 3000
    days: int = 730
    seed: int = 7
    start: date = date(2023, 1, 2)
    products: int | None = None
    dirt: bool = True
    # shapes real exports have (each off by default; tests/training/test_shapes.py trains on each)
    returns: bool = True  # False: no returns or cancellations at all
    single_product: bool = False  # one StockCode in one category for every line
    single_cohort: bool = False  # every customer acquired on the first day
    heavy_tail: bool = False  # baskets times a Pareto(1.5) factor: a few huge orders
    zero_only_customers: int = 0  # extra customers whose only lines are $0
    duplicate_share: float = 0.0  # extra exact duplicate lines, as a share of the lines

    def product_count(self) -> int:
        return self.products or int(np.clip(self.customers // 8, 150, 3000))


@dataclass(frozen=True)
class SyntheticData:
    lines: pd.DataFrame
    catalogue: pd.DataFrame
    config: SyntheticConfig


def _yearly(day_of_year: np.ndarray) -> np.ndarray:
    """Store-wide seasonality: a November/December peak and a mild summer lull."""
    peak = 0.5 * np.exp(-(((day_of_year - 335) / 25.0) ** 2))
    return 1.0 + peak + 0.1 * np.cos(2 * np.pi * (day_of_year - 15) / 365.0)


def _category_season(day_of_year: np.ndarray) -> np.ndarray:
    """[n, C] multiplier of each category's appeal on the given days of the year."""
    cols = []
    for name in CATEGORIES:
        p = PROFILES[name]
        distance = np.abs(day_of_year - p.peak_day_of_year)
        distance = np.minimum(distance, 365 - distance)
        cols.append(1.0 + p.peak_amplitude * np.exp(-((distance / p.peak_width_days) ** 2)))
    return np.column_stack(cols)


def _catalogue(rng: np.random.Generator, cfg: SyntheticConfig) -> pd.DataFrame:
    n = cfg.product_count()
    shares = np.array([PROFILES[c].product_share for c in CATEGORIES])
    counts = np.maximum(np.round(shares / shares.sum() * n).astype(int), 3)
    category = np.repeat(np.arange(len(CATEGORIES)), counts)
    n = len(category)
    rank = np.concatenate([np.arange(k) for k in counts])
    popularity = 1.0 / (rank + 1.0) ** 0.9 * rng.lognormal(0, 0.3, n)
    median = np.array([PROFILES[CATEGORIES[k]].median_price for k in category])
    sigma = np.array([PROFILES[CATEGORIES[k]].price_sigma for k in category])
    price = np.maximum(np.round(median * rng.lognormal(0, sigma), 2), 0.19)
    launch = np.where(rng.random(n) < 0.12, rng.uniform(0.15, 0.75, n) * cfg.days, 0.0)
    retired = rng.random(n) < 0.12
    end = np.where(
        retired, np.maximum(launch + 60, rng.uniform(0.35, 0.85, n) * cfg.days), cfg.days + 1.0
    )
    anchor = rank == 0
    launch[anchor], end[anchor] = 0.0, cfg.days + 1.0
    descriptions = []
    for i in range(n):
        adjectives, nouns = _WORDS[CATEGORIES[category[i]]]
        adjective = adjectives[int(rng.integers(len(adjectives)))]
        noun = nouns[int(rng.integers(len(nouns)))]
        descriptions.append(f"{adjective} {noun} {rank[i] + 1:03d}")
    return pd.DataFrame(
        {
            "product_id": [
                f"{20000 + 37 * i}{'AB'[i % 2] if i % 5 == 0 else ''}" for i in range(n)
            ],
            "description": descriptions,
            "category": np.array(CATEGORIES)[category],
            "category_index": category,
            "unit_price": price,
            "popularity": popularity,
            "launch_day": launch,
            "end_day": end,
        }
    )


def _purchase_days(
    rng: np.random.Generator, cfg: SyntheticConfig, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer index, day float) of every purchase, plus each customer's weekend propensity."""
    days = float(cfg.days)
    at_start = rng.random(n) < 0.33
    acquired = np.where(at_start, rng.uniform(0, 45, n), rng.uniform(0, days - 7, n))
    if cfg.single_cohort:
        acquired = np.zeros(n)
    rate = np.minimum(rng.gamma(1.3, 1 / 55.0, n), 0.35)
    dropout = rng.beta(1.2, 7.0, n)
    weekend = rng.beta(1.5, 6.0, n)  # mean 0.19: weekend days are quieter overall
    start_dow = cfg.start.weekday()
    start_doy = cfg.start.timetuple().tm_yday
    ceiling = np.maximum(1.4 * (1 - weekend), 3.5 * weekend) * 1.65

    def intensity(who: np.ndarray, t: np.ndarray) -> np.ndarray:
        whole = np.floor(t)
        dow = (start_dow + whole.astype(np.int64)) % 7
        week = np.where(dow >= 5, 3.5 * weekend[who], 1.4 * (1 - weekend[who]))
        return week * _yearly((start_doy + whole) % 365)

    cust = [np.arange(n)]
    when = [acquired]
    active, t = np.arange(n), acquired.copy()
    while active.size:
        keep = rng.random(active.size) >= dropout[active]
        active, t = active[keep], t[keep]
        pending = np.ones(active.size, dtype=bool)
        while pending.any():
            idx = np.flatnonzero(pending)
            who = active[idx]
            t[idx] += rng.exponential(1.0 / (rate[who] * ceiling[who]))
            accept = rng.random(idx.size) * ceiling[who] < intensity(who, t[idx])
            pending[idx[accept | (t[idx] >= days)]] = False
        inside = t < days
        active, t = active[inside], t[inside]
        cust.append(active.copy())
        when.append(t.copy())
    return np.concatenate(cust), np.concatenate(when), weekend


def _choose_products(
    rng: np.random.Generator, catalogue: pd.DataFrame, category: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """Product index per line: popularity-weighted within the category, on sale that day."""
    out = np.empty(category.size, dtype=np.int64)
    cat_of = catalogue["category_index"].to_numpy()
    launch = catalogue["launch_day"].to_numpy()
    end = catalogue["end_day"].to_numpy()
    pop = catalogue["popularity"].to_numpy()
    for k in range(len(CATEGORIES)):
        members = np.flatnonzero(cat_of == k)
        cumulative = np.cumsum(pop[members]) / pop[members].sum()
        lines = np.flatnonzero(category == k)
        chosen = np.full(lines.size, members[0])
        todo = np.ones(lines.size, dtype=bool)
        for _ in range(6):
            idx = np.flatnonzero(todo)
            if not idx.size:
                break
            draw = members[
                np.minimum(np.searchsorted(cumulative, rng.random(idx.size)), len(members) - 1)
            ]
            ok = (launch[draw] <= day[lines[idx]]) & (day[lines[idx]] < end[draw])
            chosen[idx[ok]] = draw[ok]
            todo[idx[ok]] = False
        out[lines] = chosen
    return out


def generate(cfg: SyntheticConfig) -> SyntheticData:
    """Lines with the Online Retail II columns plus Category, sorted by invoice date."""
    rng = np.random.default_rng(cfg.seed)
    catalogue = _catalogue(rng, cfg)
    n = cfg.customers
    customer_ids = (12_000 + rng.permutation(n) * 3 + rng.integers(0, 3, n)).astype(str)
    country = rng.choice(len(COUNTRIES), size=n, p=_COUNTRY_WEIGHTS / _COUNTRY_WEIGHTS.sum())
    basket_mean = rng.gamma(3.0, 70.0 / 3.0, n)
    lines_mean = rng.gamma(2.0, 1.3, n)
    taste = rng.dirichlet([PROFILES[c].taste for c in CATEGORIES], size=n)
    returner = rng.gamma(2.0, 0.5, n)

    inv_cust, inv_time, _ = _purchase_days(rng, cfg, n)
    order = np.lexsort((inv_cust, inv_time))
    inv_cust, inv_time = inv_cust[order], inv_time[order]
    inv_day = np.floor(inv_time).astype(np.int64)
    n_inv = inv_cust.size
    basket = rng.gamma(2.5, basket_mean[inv_cust] / 2.5)
    if cfg.heavy_tail:
        basket = basket * (1.0 + rng.pareto(1.5, n_inv))
    n_lines = np.minimum(1 + rng.poisson(lines_mean[inv_cust]), 30)

    line_inv = np.repeat(np.arange(n_inv), n_lines)
    line_cust = inv_cust[line_inv]
    line_day = inv_day[line_inv]
    start_doy = cfg.start.timetuple().tm_yday
    appeal = taste[line_cust] * _category_season((start_doy + line_day) % 365)
    cumulative = np.cumsum(appeal, axis=1)
    pick = rng.random(line_inv.size) * cumulative[:, -1]
    line_cat = (cumulative < pick[:, None]).sum(axis=1)
    product = _choose_products(rng, catalogue, line_cat, line_day.astype(np.float64))
    price = catalogue["unit_price"].to_numpy()[product]
    weight = rng.exponential(1.0, line_inv.size)
    weight /= np.bincount(line_inv, weights=weight)[line_inv]
    qty = np.clip(np.round(basket[line_inv] * weight / price), 1, 480).astype(np.int64)

    merged = (
        pd.DataFrame({"inv": line_inv, "product": product, "qty": qty, "cat": line_cat})
        .groupby(["inv", "product"], sort=True)
        .agg(qty=("qty", "sum"), cat=("cat", "first"))
        .reset_index()
    )
    line_inv = merged["inv"].to_numpy()
    product = merged["product"].to_numpy()
    line_cat = merged["cat"].to_numpy()
    qty = np.minimum(merged["qty"].to_numpy(), 480)
    line_cust = inv_cust[line_inv]
    line_day = inv_day[line_inv]
    base_return = np.array([PROFILES[c].return_rate for c in CATEGORIES])[line_cat]
    median_price = np.array([PROFILES[c].median_price for c in CATEGORIES])[line_cat]
    pricier = np.sqrt(catalogue["unit_price"].to_numpy()[product] / median_price)
    p_return = np.minimum(
        base_return * returner[line_cust] * pricier * (1 + 0.15 * np.log(qty)), 0.6
    )
    is_returned = rng.random(line_inv.size) < p_return
    partial = rng.random(line_inv.size) < 0.3
    ret_qty = np.where(partial, np.ceil(rng.random(line_inv.size) * qty), qty).astype(np.int64)
    ret_day = line_day + 1 + np.floor(rng.exponential(6.0, line_inv.size)).astype(np.int64)
    is_returned &= (ret_day < cfg.days) & cfg.returns

    sales = pd.DataFrame(
        {
            "cust": line_cust,
            "day": line_day,
            "key": line_inv,
            "product": product,
            "qty": qty,
            "is_return": False,
        }
    )
    returns = pd.DataFrame(
        {
            "cust": line_cust[is_returned],
            "day": ret_day[is_returned],
            "key": -1,
            "product": product[is_returned],
            "qty": -ret_qty[is_returned],
            "is_return": True,
        }
    )
    returns["key"] = (
        n_inv + pd.factorize(pd.MultiIndex.from_arrays([returns["cust"], returns["day"]]))[0]
    )
    frame = pd.concat([sales, returns], ignore_index=True)
    frame = _add_dirt(rng, frame, catalogue, cfg) if cfg.dirt else frame
    lines = _to_columns(
        rng, frame, catalogue=catalogue, cfg=cfg, customer_ids=customer_ids, country=country
    )
    return SyntheticData(_reshape(lines, cfg), catalogue, cfg)


def _reshape(lines: pd.DataFrame, cfg: SyntheticConfig) -> pd.DataFrame:
    """The optional shapes applied to finished lines (own generator: default bytes unchanged)."""
    rng = np.random.default_rng(cfg.seed + 1)
    if cfg.single_product:
        real = lines[STOCK_CODE].to_numpy() != "POST"
        lines.loc[real, STOCK_CODE] = "ITEM1"
        lines.loc[real, DESCRIPTION] = "THE ONE PRODUCT"
        lines.loc[real, CATEGORY] = "apparel"
    extra = []
    if cfg.zero_only_customers:
        k = cfg.zero_only_customers
        sales = lines.loc[(lines[PRICE].to_numpy() > 0) & (lines[STOCK_CODE].to_numpy() != "POST")]
        rows = sales.sample(n=k, replace=True, random_state=rng.integers(1 << 31)).copy()
        rows[CUSTOMER_ID] = [str(990_000 + i) for i in range(k)]
        rows[INVOICE] = [str(990_000 + i) for i in range(k)]
        rows[PRICE] = 0.0
        extra.append(rows)
    if cfg.duplicate_share > 0:
        n = int(len(lines) * cfg.duplicate_share)
        extra.append(lines.sample(n=n, replace=True, random_state=rng.integers(1 << 31)))
    if extra:
        lines = pd.concat([lines, *extra], ignore_index=True)
        order = np.argsort(lines[INVOICE_DATE].to_numpy(), kind="stable")
        lines = lines.iloc[order].reset_index(drop=True)
    return lines


def _add_dirt(
    rng: np.random.Generator, frame: pd.DataFrame, catalogue: pd.DataFrame, cfg: SyntheticConfig
) -> pd.DataFrame:
    """Guest invoices, postage, free samples and duplicates for the cleaning rules to find."""
    sales = frame.loc[~frame["is_return"]]
    keys = sales["key"].unique()
    next_key = int(frame["key"].max()) + 1
    guest_keys = rng.choice(keys, size=max(1, keys.size // 50), replace=False)
    guests = sales.loc[sales["key"].isin(guest_keys)].copy()
    guests["key"] = next_key + pd.factorize(guests["key"])[0]
    guests["cust"] = -1
    post_keys = rng.choice(keys, size=max(1, keys.size // 40), replace=False)
    first = sales.drop_duplicates("key").set_index("key")
    postage = pd.DataFrame(
        {
            "cust": first.loc[post_keys, "cust"].to_numpy(),
            "day": first.loc[post_keys, "day"].to_numpy(),
            "key": post_keys,
            "product": -1,
            "qty": rng.integers(1, 4, post_keys.size),
            "is_return": False,
        }
    )
    free = sales.sample(n=max(1, len(sales) // 800), random_state=rng.integers(1 << 31)).copy()
    free["product"] = -2 - free["product"]
    dupes = sales.sample(n=max(1, len(sales) // 400), random_state=rng.integers(1 << 31))
    return pd.concat([frame, guests, postage, free, dupes], ignore_index=True)


def _to_columns(
    rng: np.random.Generator,
    frame: pd.DataFrame,
    *,
    catalogue: pd.DataFrame,
    cfg: SyntheticConfig,
    customer_ids: np.ndarray,
    country: np.ndarray,
) -> pd.DataFrame:
    """Invoice numbers in time order, timestamps, prices and texts; returns sorted lines."""
    keys, key_index = np.unique(frame["key"].to_numpy(), return_inverse=True)
    key_day = np.zeros(keys.size, dtype=np.int64)
    key_day[key_index] = frame["day"].to_numpy()
    hour = rng.choice(_HOURS, size=keys.size, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    second = hour * 3600 + rng.integers(0, 60, keys.size) * 60
    stamp = key_day * 86_400 + second
    rank = np.empty(keys.size, dtype=np.int64)
    rank[np.lexsort((keys, stamp))] = np.arange(keys.size)
    number = (FIRST_INVOICE + rank)[key_index].astype(str)
    is_return = frame["is_return"].to_numpy()
    invoice = np.where(is_return, np.char.add("C", number), number)
    start = np.datetime64(cfg.start, "s")
    moments = start + stamp[key_index].astype("timedelta64[s]")

    product = frame["product"].to_numpy()
    real = product >= 0
    free = product <= -2
    idx = np.where(real, product, np.where(free, -2 - product, 0))
    stock = catalogue["product_id"].to_numpy()[idx].astype(object)
    desc = catalogue["description"].to_numpy()[idx].astype(object)
    cat = catalogue["category"].to_numpy()[idx].astype(object)
    price = catalogue["unit_price"].to_numpy()[idx].astype(np.float64)
    postage = product == -1
    stock[postage], desc[postage], cat[postage], price[postage] = "POST", "POSTAGE", "", 18.0
    price[free] = 0.0

    cust = frame["cust"].to_numpy()
    guest = cust < 0
    cid = np.where(guest, "", customer_ids[np.maximum(cust, 0)]).astype(object)
    ctry = np.array(COUNTRIES, dtype=object)[country[np.maximum(cust, 0)]]
    ctry[guest] = "United Kingdom"
    out = pd.DataFrame(
        {
            INVOICE: invoice,
            STOCK_CODE: stock,
            DESCRIPTION: desc,
            QUANTITY: frame["qty"].to_numpy(),
            INVOICE_DATE: pd.to_datetime(moments).strftime("%Y-%m-%d %H:%M:%S"),
            PRICE: price,
            CUSTOMER_ID: cid,
            COUNTRY: ctry,
            CATEGORY: cat,
        }
    )
    order = np.lexsort((np.arange(len(out)), rank[key_index]))
    out = out.iloc[order].reset_index(drop=True)
    return out[[*EXPORT_COLUMNS, CATEGORY]]


def write_csv(data: SyntheticData, path: str) -> None:
    """The exact bytes that are digested for lineage and then loaded like any real file."""
    frame = data.lines.copy()
    frame[PRICE] = np.char.mod("%.2f", frame[PRICE].to_numpy(dtype=np.float64))
    frame[QUANTITY] = frame[QUANTITY].to_numpy().astype(str)
    frame.to_csv(path, index=False, lineterminator="\n")


DEAD_DAILY_UNITS = 0.05


def synthetic_inventory(
    catalogue: pd.DataFrame, recent_daily_units: np.ndarray, seed: int
) -> tuple[pd.DataFrame, pd.Series]:
    """A stock position per product with a realistic mix, plus the status each was drawn as.

    Products that no longer sell mostly still sit in the warehouse (dead stock); of the rest,
    about 15% are drawn with cover below their supplier lead time (stockout risk), 20% with
    months of cover (overstock) and the others with two to six weeks (healthy).
    """
    rng = np.random.default_rng(seed)
    n = len(catalogue)
    rate = np.asarray(recent_daily_units, dtype=np.float64)
    lead = rng.integers(3, 22, n)
    draw = rng.random(n)
    dead = rate < DEAD_DAILY_UNITS
    status = np.where(
        dead,
        np.where(draw < 0.85, "dead_stock", "healthy"),
        np.where(draw < 0.15, "stockout_risk", np.where(draw < 0.35, "overstock", "healthy")),
    )
    cover = np.select(
        [status == "stockout_risk", status == "overstock", status == "healthy"],
        [rng.uniform(0.3, 0.8, n) * lead, rng.uniform(90, 240, n), rng.uniform(14, 45, n)],
        default=0.0,
    )
    stock = np.where(
        status == "dead_stock", rng.integers(20, 300, n), np.round(cover * np.maximum(rate, 0.1))
    )
    on_order = np.where(status == "healthy", np.round(rng.uniform(0, 0.6, n) * lead * rate), 0.0)
    price = catalogue["unit_price"].to_numpy(dtype=np.float64)
    inventory = pd.DataFrame(
        {
            "product_id": catalogue["product_id"].to_numpy(),
            "stock_on_hand": stock.astype(np.int64),
            "unit_cost": np.round(price * rng.uniform(0.45, 0.7, n), 2),
            "unit_price": np.round(price, 2),
            "units_on_order": on_order.astype(np.int64),
            "lead_time_days": lead.astype(np.int64),
            "category": catalogue["category"].to_numpy(),
        }
    )
    return inventory[list(INVENTORY_COLUMNS)], pd.Series(status, name="status")
