"""Read Online Retail II transaction files (CSV or XLSX) into the shared lines frame.

Validation reports every problem at once: a missing column by name, and unparseable dates or
numbers counted per column with example row numbers (the file's line number for CSV, the
spreadsheet row for XLSX; the header is row 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crm.canonical import canonical_customer_id
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
from crm.features import UNCATEGORISED, per_distinct, text_values

EXAMPLES = 5
_US_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")


class SchemaError(ValueError):
    """A transaction file that does not have the expected columns or values."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = str(path)
        self.problems = problems


@dataclass(frozen=True)
class LoadedData:
    """The typed lines plus where they came from."""

    lines: pd.DataFrame
    path: Path
    file_format: str
    has_category: bool


def _read_raw(path: Path) -> tuple[pd.DataFrame, str]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raw = pd.read_excel(path, dtype=object, engine="openpyxl")
        return raw, "xlsx"
    if suffix in (".csv", ".txt", ""):
        try:
            raw = pd.read_csv(
                path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=False
            )
        except pd.errors.EmptyDataError:
            raise SchemaError(path, ["empty file: no header row"]) from None
        except (UnicodeDecodeError, pd.errors.ParserError) as err:
            raise SchemaError(path, [f"not a readable UTF-8 CSV ({err})"]) from None
        return raw, "csv"
    raise SchemaError(path, [f"unsupported file type {suffix!r}: use .csv or .xlsx"])


def _examples(mask: np.ndarray, values: pd.Series) -> str:
    rows = np.flatnonzero(mask)[:EXAMPLES]
    shown = ", ".join(f"row {r + 2} ({values.iloc[r]!r})" for r in rows)
    return f"{int(mask.sum())} value(s), e.g. {shown}"


def _text(raw: pd.DataFrame, col: str) -> pd.Series:
    return pd.Series(text_values(raw[col]), index=raw.index, dtype=object)


def parse_dates(values: pd.Series) -> pd.Series:
    """ISO 8601 first, then the spreadsheet's M/D/YYYY H:MM; unparseable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values).astype("datetime64[s]")
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype=object)
    is_dt = distinct.map(lambda v: hasattr(v, "year")).to_numpy(dtype=bool)
    text = distinct.where(~is_dt, "").astype(str).str.strip()
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    for fmt in _US_FORMATS:
        todo = parsed.isna().to_numpy() & (text != "").to_numpy()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    if is_dt.any():
        stamps = [pd.Timestamp(v) for v in distinct[is_dt]]
        stamps = [s.tz_convert("UTC").tz_localize(None) if s.tzinfo else s for s in stamps]
        parsed[is_dt] = stamps
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    per_value = pd.concat([parsed, pd.Series([pd.NaT], dtype=parsed.dtype)], ignore_index=True)
    return pd.Series(per_value.to_numpy()[codes], index=values.index, dtype=parsed.dtype).astype(
        "datetime64[s]"
    )


def canonical_customer_ids(values: pd.Series) -> pd.Series:
    """'13085.0' -> '13085' as in crm.canonical; other text kept; missing -> ''."""
    return pd.Series(
        per_distinct(values, canonical_customer_id), index=values.index, dtype=object
    ).astype(str)


def load_category_map(path: Path | str) -> dict[str, str]:
    """A CSV with StockCode and Category columns -> {StockCode: category}."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise SchemaError(path, [f"cannot read the category mapping ({err})"]) from None
    missing = [c for c in (STOCK_CODE, CATEGORY) if c not in table.columns]
    if missing:
        raise SchemaError(path, [f"missing column {c!r}" for c in missing])
    codes = table[STOCK_CODE].str.strip()
    categories = table[CATEGORY].str.strip().str.lower()
    keep = (codes != "") & (categories != "")
    return dict(zip(codes[keep], categories[keep], strict=True))


def validate(
    raw: pd.DataFrame, path: Path | str, category_of: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Typed lines frame from raw cells, or SchemaError listing every problem found."""
    raw = raw.rename(columns=lambda c: str(c).strip())
    missing = [c for c in EXPORT_COLUMNS if c not in raw.columns]
    if missing:
        raise SchemaError(path, [f"missing column {c!r}" for c in missing])
    problems: list[str] = []
    out = pd.DataFrame(index=raw.index)
    for col in (INVOICE, STOCK_CODE):
        out[col] = _text(raw, col)
        empty = (out[col] == "").to_numpy()
        if empty.any():
            problems.append(f"{col}: empty in {_examples(empty, out[col])}")
    out[DESCRIPTION] = _text(raw, DESCRIPTION)
    for col in (QUANTITY, PRICE):
        text = _text(raw, col)
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(number)
        if bad.any():
            problems.append(f"{col}: not a number in {_examples(bad, text)}")
        out[col] = number
    dates = parse_dates(raw[INVOICE_DATE])
    bad_dates = dates.isna().to_numpy()
    if bad_dates.any():
        problems.append(
            f"{INVOICE_DATE}: not a date-time in {_examples(bad_dates, _text(raw, INVOICE_DATE))}"
        )
    out[INVOICE_DATE] = dates
    out[CUSTOMER_ID] = canonical_customer_ids(_text(raw, CUSTOMER_ID))
    out[COUNTRY] = _text(raw, COUNTRY)
    category = _text(raw, CATEGORY).str.lower() if CATEGORY in raw.columns else None
    if category is None:
        category = pd.Series("", index=raw.index, dtype=object)
    blank = (category == "").to_numpy()
    if blank.any() and category_of:
        category[blank] = out.loc[blank, STOCK_CODE].map(dict(category_of)).fillna("").to_numpy()
    out[CATEGORY] = category.replace("", UNCATEGORISED).astype(str)
    if problems:
        raise SchemaError(path, problems)
    return out.reset_index(drop=True)


def load_transactions(path: Path | str, category_map: Path | str | None = None) -> LoadedData:
    """Read and validate a CSV or XLSX file of Online Retail II lines."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(path, ["no such file"])
    raw, file_format = _read_raw(path)
    category_of = load_category_map(category_map) if category_map else None
    raw.columns = [str(c).strip() for c in raw.columns]
    has_category = CATEGORY in raw.columns or category_of is not None
    return LoadedData(validate(raw, path, category_of), path, file_format, has_category)
