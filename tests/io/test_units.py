"""The spacing-unit policy (medseg.io.units) across formats, and data no format may silently mangle."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import tifffile
from conftest import blobs
from PIL import Image

from medseg.errors import DataValueError, FormatError, MedsegError, ShapeError
from medseg.io import Volume, open_array, read, write
from medseg.io.units import convert_spacing, normalize_unit

ROUND_TRIP_SUFFIXES = (".nii.gz", ".mha", ".nrrd", ".tif", ".ome.tif", ".h5", ".zarr")


def test_unit_spellings_and_conversions():
    assert [normalize_unit(u) for u in ("micron", "µm", "\\u00B5m", "NM", "mm", None, "pixel")] == [
        "um",
        "um",
        "um",
        "nm",
        "mm",
        None,
        None,
    ]
    assert convert_spacing((0.5, 2.0), "cm", target="um") == ((5000.0, 20000.0), "um")
    assert convert_spacing((4.0,), "Å") == (pytest.approx((0.4,)), "nm")
    assert convert_spacing((0.002,), "meter") == (pytest.approx((2.0,)), "mm")
    with pytest.raises(DataValueError, match=r"unknown length unit 'furlong'"):
        normalize_unit("furlong")
    with pytest.raises(DataValueError, match=r"not one of nm, um, mm"):
        Volume(np.zeros((1, 2, 2)), unit="cm")


@pytest.mark.parametrize("suffix", ROUND_TRIP_SUFFIXES)
@pytest.mark.parametrize("unit", ["nm", "um", "mm", None])
def test_unit_round_trips(tmp_path, suffix, unit):
    volume = Volume(blobs((1, 3, 4, 5), np.uint16), spacing=(40.0, 4.0, 4.0), unit=unit)
    back = read(write(volume, tmp_path / f"v{suffix}"))
    if suffix == ".nii.gz" and unit == "nm":  # NIfTI has no nm: written as micron
        assert back.unit == "um" and back.spacing == pytest.approx((0.04, 0.004, 0.004))
    else:
        assert back.unit == unit and back.spacing == pytest.approx(volume.spacing)
    with open_array(tmp_path / f"v{suffix}") as lazy:
        assert lazy.unit == back.unit


def test_png_keeps_unit_it_wrote_and_ignores_dpi(tmp_path):
    back = read(write(Volume(blobs((1, 4, 5)), spacing=(0.25, 0.25), unit="um"), tmp_path / "a.png"))
    assert (back.spacing, back.unit) == ((0.25, 0.25), "um")
    Image.fromarray(blobs((4, 5))).save(tmp_path / "photo.png", dpi=(300, 300))
    photo = read(tmp_path / "photo.png")
    assert (photo.spacing, photo.unit) == ((1.0, 1.0), None)
    assert photo.meta["dpi"] == pytest.approx((300, 300), rel=1e-3)


def test_nifti_writes_its_real_unit(tmp_path):
    write(Volume(blobs((1, 2, 3, 4)), spacing=(2.0, 0.5, 0.5), unit="um"), tmp_path / "um.nii.gz")
    assert nib.load(tmp_path / "um.nii.gz").header.get_xyzt_units()[0] == "micron"
    write(Volume(blobs((1, 2, 3, 4))), tmp_path / "none.nii.gz")
    assert nib.load(tmp_path / "none.nii.gz").header.get_xyzt_units()[0] == "unknown"
    nib.save(nib.Nifti1Image(blobs((4, 3, 2)), np.diag([0.002, 0.002, 0.005, 1.0])), tmp_path / "m.nii")
    image = nib.load(tmp_path / "m.nii")
    image.header.set_xyzt_units("meter")
    nib.save(image, tmp_path / "m.nii")
    back = read(tmp_path / "m.nii")
    assert back.unit == "mm" and back.spacing == pytest.approx((5.0, 2.0, 2.0))


def test_tiff_resolution_policy(tmp_path):
    page = blobs((4, 5))
    tifffile.imwrite(tmp_path / "dpi.tif", page, resolution=(72, 72), resolutionunit="INCH")
    dpi = read(tmp_path / "dpi.tif")
    assert (dpi.spacing, dpi.unit, dpi.meta["dpi"]) == ((1.0, 1.0), None, (72.0, 72.0))
    # 4000 pixels per cm = 2.5 um pixels
    tifffile.imwrite(tmp_path / "cm.tif", page, resolution=(4000, 2000), resolutionunit="CENTIMETER")
    cm = read(tmp_path / "cm.tif")
    assert cm.unit == "um" and cm.spacing == pytest.approx((5.0, 2.5))
    tifffile.imwrite(
        tmp_path / "nm.ome.tif",
        page,
        ome=True,
        metadata={"axes": "YX", "PhysicalSizeX": 4.0, "PhysicalSizeY": 4.0, "PhysicalSizeXUnit": "nm"},
    )
    nm = read(tmp_path / "nm.ome.tif")
    assert (nm.spacing, nm.unit) == ((4.0, 4.0), "nm")


def test_multipage_tiff_named_png_is_read_fully(tmp_path):
    stack = blobs((7, 6, 5), np.float32)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    (tmp_path / "stack.png").write_bytes((tmp_path / "stack.tif").read_bytes())
    np.testing.assert_array_equal(read(tmp_path / "stack.png").array, stack[None])


def test_animated_image_is_refused(tmp_path):
    frames = [Image.fromarray(blobs((4, 5), seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    with pytest.raises(FormatError, match=r"anim\.png holds 3 frames"):
        read(tmp_path / "anim.png")


def test_complex_mha_is_refused_and_nifti_round_trips(tmp_path):
    data = (blobs((1, 2, 3, 4), np.float32) + 1j * blobs((1, 2, 3, 4), np.float32, seed=1)).astype(
        np.complex64
    )
    with pytest.raises(DataValueError, match=r"complex data \(complex64\).*\.nii\.gz"):
        write(Volume(data), tmp_path / "c.mha")
    assert not (tmp_path / "c.mha").exists()
    np.testing.assert_array_equal(read(write(Volume(data), tmp_path / "c.nii.gz")).array, data)


_SUFFIXES = (".nii.gz", ".mha", ".nrrd", ".tif", ".ome.tif", ".h5", ".zarr", ".png", ".bmp", ".jpg")


@pytest.mark.parametrize("suffix", _SUFFIXES)
@pytest.mark.parametrize("case", ["float16", "object", "empty", "complex64"])
def test_write_gives_a_medseg_error_or_round_trips(tmp_path, suffix, case):
    shape = (1, 4, 5)
    data = {
        "float16": blobs(shape, np.float32).astype(np.float16),
        "object": np.empty(shape, dtype=object),
        "empty": np.zeros((1, 0, 5), np.uint8),
        "complex64": (blobs(shape, np.float32) + 2j).astype(np.complex64),
    }[case]
    target = tmp_path / f"x{suffix}"
    try:
        write(Volume(data), target)
    except MedsegError as err:
        assert isinstance(err, (DataValueError, ShapeError, FormatError))
        assert str(target) in str(err) or target.name in str(err)
        assert not target.exists() and list(tmp_path.iterdir()) == []
        return
    assert case in ("float16", "complex64"), f"{case} data was written to {suffix}"
    back = read(target)
    assert back.array.dtype == data.dtype
    np.testing.assert_array_equal(back.array, data)


_LOSSLESS = (".nii.gz", ".mha", ".nrrd", ".tif", ".ome.tif", ".h5", ".zarr", ".png", ".bmp")
_DTYPES = (
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
)


@pytest.mark.parametrize("suffix", _LOSSLESS)
@pytest.mark.parametrize("shape", [(1, 4, 5), (3, 4, 5), (1, 3, 4, 5), (2, 3, 4, 5)])
def test_whatever_is_written_reads_back_equal(tmp_path, suffix, shape):
    """Every (dtype, layout) a format accepts round-trips exactly; what it cannot hold is refused."""
    for dtype in _DTYPES:
        data = blobs(shape, np.dtype(dtype))
        target = tmp_path / f"{dtype}{suffix}"
        try:
            write(Volume(data), target)
        except MedsegError:
            assert not target.exists()
            continue
        back = read(target).array
        assert back.shape == data.shape, f"{dtype} {shape} {suffix}: read back {back.shape}"
        np.testing.assert_array_equal(back.astype(data.dtype) if dtype == "bool" else back, data)
        if dtype != "bool":
            assert back.dtype == data.dtype, f"{dtype} {suffix} read back as {back.dtype}"


def test_hdf5_unit_attribute_in_other_lengths_is_converted(tmp_path):
    import h5py

    with h5py.File(tmp_path / "cm.h5", "w") as f:
        data = f.create_dataset("raw", data=np.zeros((2, 3, 4), np.uint8))
        data.attrs.update(resolution=[0.005, 0.0001, 0.0001], offset=[0.01, 0.0, 0.0], unit="cm")
        bad = f.create_dataset("bad", data=np.zeros((3, 4), np.uint8))
        bad.attrs.update(resolution=[1.0, 1.0], unit="parsec")
    volume = read(f"{tmp_path / 'cm.h5'}:/raw")
    assert volume.unit == "mm"
    assert volume.spacing == pytest.approx((0.05, 0.001, 0.001)) and volume.origin == pytest.approx(
        (0.1, 0, 0)
    )
    with pytest.raises(FormatError, match=r"bad: attribute unit='parsec'"):
        read(f"{tmp_path / 'cm.h5'}:/bad")
