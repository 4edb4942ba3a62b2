"""Training: the loop and its parts, each in its own module.

:mod:`~medseg.train.trainer` (the loop: steps, validation, stopping, checkpoints,
exact resume), :mod:`~medseg.train.stream` (batch ``k`` = patches
``[k * B, (k + 1) * B)``, sharded per DDP rank), :mod:`~medseg.train.checkpoint`,
:mod:`~medseg.train.resume` (what a resumed run may change), :mod:`~medseg.train.precision`
(autocast, gradient scaling, clipping), :mod:`~medseg.train.distributed` (torchrun/DDP),
:mod:`~medseg.train.losses`, :mod:`~medseg.train.finetune` (initialise from another
checkpoint) and :mod:`~medseg.train.pretrain` (layer-wise denoising pre-training).
"""
