#!/usr/bin/env bash
# Download into .whl/ the wheels that benchmarks/gpu_check.sh needs on a GPU machine whose Python
# already has torch, numpy, scipy, scikit-image, tifffile, h5py, numba, pyyaml, tqdm and
# matplotlib but none of medseg's other dependencies, and no network. Versions are those of this
# checkout's venv; the target Python is 3.12 on x86-64 Linux unless PYVER says otherwise.
#
#   benchmarks/gpu_wheels.sh                # then carry .whl/ to the GPU machine
set -euo pipefail
PY=${PY:-.venv/bin/python}
PYVER=${PYVER:-3.12}
NAMES=(monai nibabel zarr numcodecs donfig google-crc32c edt fastremap connected-components-3d
       pydantic pydantic-core annotated-types typing-inspection)
PINS=()
for name in "${NAMES[@]}"; do
    PINS+=("$name==$("$PY" -m pip show "$name" | awk '/^Version:/ { print $2 }')")
done
PLATFORMS=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
    PLATFORMS+=(--platform "${tag}_x86_64")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    "${PLATFORMS[@]}" --platform any -d .whl "${PINS[@]}"
echo "wheels for Python $PYVER in .whl/: $(ls .whl | wc -l) files, $(du -sh .whl | cut -f1)"
