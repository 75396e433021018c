"""One module per served model; each returns a TrainedModel ready for the parity gate."""
