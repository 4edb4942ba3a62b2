"""Sliding-window inference, predictors and post-processing."""
