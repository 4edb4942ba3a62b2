"""Pipelines that wire the stages (data → train → predict → evaluate → report) for the CLI."""
