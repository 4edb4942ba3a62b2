"""Metrics (numpy/scipy), challenge file formats and reports. Never imports torch."""
