"""Parameter counts of the paper architectures against the numbers the papers give.

Run: ``python benchmarks/model_params.py``. Models are built on the meta device, so
nothing is allocated and no forward pass runs.

Reference numbers:
- U-Net (Ronneberger et al. 2015): 23 conv layers, 64 -> 1024 channels, 1 input channel,
  2 classes. The paper states no total; 31.03 M is the hand count of that architecture
  (weights + biases), the number usually quoted for it.
- 3D U-Net (Çiçek et al. 2016, Sec. 2): "19069955 parameters" (3 channels, 3 labels).
- FCN (Long et al. 2015, Table 1): FCN-VGG16 "134M" parameters. The Caffe FCN-8s is
  VGG-16 (138,357,544) without its 1000-way fc8 plus score/deconvolution layers:
  134.5 M. FCN-32s/16s have larger final deconvolutions (64x64, 32x32 kernels); with
  fixed (non-learned) bilinear upsampling FCN-32s trains 134.3 M parameters.
"""

from __future__ import annotations

import torch

from medseg.models import build_model

# name, build params, paper count, source
ROWS = [
    (
        "unet-paper",
        {"in_channels": 1, "out_channels": 2},
        31.03e6,
        "Ronneberger 2015 arch. (23 convs; no total in paper)",
    ),
    ("unet3d", {"in_channels": 3, "out_channels": 3}, 19_069_955, "Cicek 2016, Sec. 2"),
    ("fcn8s", {"in_channels": 3, "out_channels": 21}, 134.5e6, "Caffe voc-fcn8s (VGG16 - fc8 + scores)"),
    ("fcn16s", {"in_channels": 3, "out_channels": 21}, 134e6, "Long 2015, Table 1 (134M)"),
    ("fcn32s", {"in_channels": 3, "out_channels": 21}, 134e6, "Long 2015, Table 1 (134M)"),
]


def count(name: str, params: dict) -> tuple[int, int]:
    """Total and trainable parameter count of ``build_model(name, **params)``."""
    with torch.device("meta"):
        model = build_model(name, **params)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def main() -> None:
    """Print the table."""
    header = f"{'model':<11} {'params':>13} {'paper':>13} {'rel. diff':>9}  source"
    print(header)
    print("-" * len(header))
    for name, params, paper, source in ROWS:
        total, _ = count(name, params)
        print(f"{name:<11} {total:>13,} {int(paper):>13,} {(total - paper) / paper:>+9.2%}  {source}")
    fixed, trainable = count("fcn32s", {"in_channels": 3, "out_channels": 21, "learnable_upsampling": False})
    print(
        f"{'fcn32s*':<11} {trainable:>13,} {134_000_000:>13,} {(trainable - 134e6) / 134e6:>+9.2%}  "
        f"* trainable with fixed bilinear upsampling ({fixed:,} incl. the fixed deconvolution)"
    )


if __name__ == "__main__":
    main()
