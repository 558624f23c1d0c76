"""Baseline value-factorisation methods: mixers and their learner differences only."""
