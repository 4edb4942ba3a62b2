"""Datasets per modality, manifests and fetch, synthetic generators, samplers, transforms."""

from medseg.data.sample import Sample

__all__ = ["Sample"]
