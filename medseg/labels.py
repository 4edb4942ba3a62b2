"""Label conventions of the supported challenges, in one place for loaders and evaluation.

``medseg.data`` (reading the datasets) and ``medseg.eval`` (writing/reading their
submission formats) must agree on these; neither may import the other, so both
import them from here.
"""

from __future__ import annotations

__all__ = ["CREMI_NEURON_IDS_KEY", "DENTAL_CLASSES", "EM_CLASSES", "ISBI_ON_DISK"]

#: medseg class ids for EM membrane segmentation (index = class id): 0 = cell, 1 = membrane.
EM_CLASSES: tuple[str, ...] = ("cell", "membrane")

#: Values stored in ISBI 2012 label files: 255 = inside a cell, 0 = membrane (CHALLENGES.md §1).
ISBI_ON_DISK: dict[str, int] = {"cell": 255, "membrane": 0}

#: HDF5 dataset of a CREMI file's neuron ids (uint64), training volumes and submissions alike.
CREMI_NEURON_IDS_KEY = "volumes/labels/neuron_ids"

#: medseg's ASSUMED class order of the ISBI 2015 bitewing masks: mask ``i_k.bmp`` -> class id ``k``
#: (index 0 is background). CHALLENGES.md §6 marks the challenge's own index order 'unconfirmed';
#: change it here, and only here, once it is confirmed.
DENTAL_CLASSES: tuple[str, ...] = (
    "background",
    "caries",
    "enamel",
    "dentin",
    "pulp",
    "crown",
    "restoration",
    "root_canal_treatment",
)
