"""Seeded synthetic datasets with ground truth, written in the real datasets' layouts.

Each generator is deterministic for a given ``seed`` and has a writer that lays the
data out exactly like the real dataset, so loaders are exercised end to end:

- EM (ISBI 2012 multi-page TIFFs, or the public mirror's ``isbi.h5``): :mod:`medseg.data.synthetic.em`
- H&E tiles (MoNuSeg TIFF + Aperio XML, GlaS BMP + ``_anno`` BMP): :mod:`.histo`
- bitewing X-rays (ISBI 2015 BMP + per-class masks): :mod:`.dental`
- CT-like volumes (nnU-Net v2 raw): :mod:`.volume`
- cell sequences (Cell Tracking Challenge): :mod:`.cells`
"""

from __future__ import annotations

from medseg.data.synthetic.cells import make_cell_sequence, write_ctc
from medseg.data.synthetic.dental import make_bitewing, write_isbi2015_dental
from medseg.data.synthetic.em import make_em_stack, write_isbi2012, write_isbi2012_mirror
from medseg.data.synthetic.histo import make_histo_tile, write_glas, write_monuseg
from medseg.data.synthetic.volume import make_ct_volume, write_nnunet_raw

__all__ = [
    "make_bitewing",
    "make_cell_sequence",
    "make_ct_volume",
    "make_em_stack",
    "make_histo_tile",
    "write_ctc",
    "write_glas",
    "write_isbi2012",
    "write_isbi2012_mirror",
    "write_isbi2015_dental",
    "write_monuseg",
    "write_nnunet_raw",
]
