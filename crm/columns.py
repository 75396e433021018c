"""The columns of a transaction export: Online Retail II's, plus an optional Category.

One definition for every reader and writer of transaction lines (training's loader and
synthetic data, crm.features, the canonical leaf encoding, the client's export), so a renamed
column cannot leave one of them reading another name. Dependency-free: clients import it.
"""

from __future__ import annotations

INVOICE = "Invoice"
STOCK_CODE = "StockCode"
DESCRIPTION = "Description"
QUANTITY = "Quantity"
INVOICE_DATE = "InvoiceDate"
PRICE = "Price"
CUSTOMER_ID = "Customer ID"
COUNTRY = "Country"
CATEGORY = "Category"  # not Online Retail II's: derived from the stock code, optional

# Online Retail II's own columns, in its order (the canonical leaf's fields).
EXPORT_COLUMNS: tuple[str, ...] = (
    INVOICE,
    STOCK_CODE,
    DESCRIPTION,
    QUANTITY,
    INVOICE_DATE,
    PRICE,
    CUSTOMER_ID,
    COUNTRY,
)
