"""Datasets per modality, manifests and fetch, synthetic generators, samplers, transforms.

Loaders live in modules per modality (import them directly, they pull in their
format libraries only when used): :mod:`medseg.data.em` (ISBI 2012, CREMI, lazy
stacks), :mod:`medseg.data.histo` (MoNuSeg, GlaS), :mod:`medseg.data.wsi` (whole-slide
tiling), :mod:`medseg.data.stain`, :mod:`medseg.data.dental` (ISBI 2015 bitewings),
:mod:`medseg.data.cells` (Cell Tracking Challenge), :mod:`medseg.data.volumes`
(nnU-Net raw, lab folders), :mod:`medseg.data.transforms` (MONAI augmentation) and
:mod:`medseg.data.synthetic` (generators and layout writers).
"""

from medseg.data.fetch import FetchResult, fetch_dataset
from medseg.data.manifest import Manifest, find_manifest, list_manifests, load_manifest
from medseg.data.sample import Sample
from medseg.data.sampling import Patch, PatchSampler

__all__ = [
    "FetchResult",
    "Manifest",
    "Patch",
    "PatchSampler",
    "Sample",
    "fetch_dataset",
    "find_manifest",
    "list_manifests",
    "load_manifest",
]
