"""The ``medseg`` command."""
