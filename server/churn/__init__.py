"""Churn post-processing: risk levels, recommendation rules, live alerts and statistics."""
