"""NIfTI I/O: reorientation by the affine (never by axis order) and exact round trips."""

from __future__ import annotations

import numpy as np
import pytest
from nibabel import orientations as nio
from synthdata import axial_first_affine

from locseg_cli.errors import LocsegError
from locseg_cli.io.nifti import canonical_orientation, load_volume, save_volume


@pytest.mark.parametrize("axcodes", [("R", "A", "S"), ("L", "P", "S"), ("I", "P", "L"), ("S", "A", "R"),
                                     ("A", "S", "L"), ("P", "I", "R")])
def test_round_trip_and_world_coordinates(axcodes):
    shape = (5, 6, 7)
    aff = np.eye(4)
    aff[:3, :3] = 0
    for axis, (code, size) in enumerate(zip(axcodes, (1.5, 0.8, 2.5))):
        world = "RAS".find(code) if code in "RAS" else "LPI".find(code)
        aff[world, axis] = size if code in "RAS" else -size
    aff[:3, 3] = (3.0, -4.0, 11.0)
    assert nio.aff2axcodes(aff) == axcodes
    arr = np.random.default_rng(0).random(shape)
    orient, can_aff = canonical_orientation(aff, shape)
    can = orient.to_canonical(arr)
    assert nio.aff2axcodes(can_aff) == ("S", "A", "R")
    assert np.array_equal(orient.from_canonical(can), arr)
    # the same voxel has the same world position in both arrays
    i = (1, 2, 3)
    j = tuple(int(v) for v in np.argwhere(can == arr[i])[0])
    assert np.allclose(aff @ [*i, 1], can_aff @ [*j, 1])


def test_axial_first_kits_like_becomes_canonical():
    aff = axial_first_affine((3.0, 0.8, 0.8))
    orient, can_aff = canonical_orientation(aff, (10, 20, 30))
    assert nio.aff2axcodes(can_aff) == ("S", "A", "R")
    can = orient.to_canonical(np.zeros((10, 20, 30)))
    assert can.shape == (10, 20, 30)  # axial stays first, but flips toward superior
    assert np.allclose(np.sqrt((can_aff[:3, :3] ** 2).sum(0)), (3.0, 0.8, 0.8))


def test_save_load_keeps_affine_and_header_codes(tmp_path):
    import nibabel as nib

    aff = axial_first_affine()
    src = nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), aff)
    src.set_qform(aff, code=0)
    src.set_sform(aff, code=2)
    save_volume(tmp_path / "a.nii.gz", np.ones((4, 5, 6), np.uint8), aff, header=src.header)
    back = nib.load(str(tmp_path / "a.nii.gz"))
    assert np.allclose(back.affine, aff)
    assert int(back.header["sform_code"]) == 2 and int(back.header["qform_code"]) == 0
    assert back.get_data_dtype() == np.uint8


def test_unreadable_and_non_3d_files_give_one_line(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti at all")
    with pytest.raises(LocsegError, match="not a readable NIfTI"):
        load_volume(bad)
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.float32), np.eye(4)), str(tmp_path / "4d.nii.gz"))
    with pytest.raises(LocsegError, match="expected a 3D image"):
        load_volume(tmp_path / "4d.nii.gz")
    with pytest.raises(LocsegError, match="file not found"):
        load_volume(tmp_path / "missing.nii.gz")
