"""Experiment runner, lab lifecycle, results bundles, statistics and plots."""
