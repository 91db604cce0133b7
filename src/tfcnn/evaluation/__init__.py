"""Metrics, baselines and node-identity controls for pair predictions."""
