"""Fresh scores: customer features recomputed as of the server's day from the shipped history
plus ingested lines (crm.history, crm.features), aged once a day in bulk. Knows no gRPC."""
