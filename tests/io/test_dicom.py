"""DICOM series: geometry read back from oblique and flipped series, refused folders, DICOM SEG."""

from __future__ import annotations

import numpy as np
import pytest
from synthdata import make_case, rotation, write_dicom_series

from locseg_cli.errors import LocsegError
from locseg_cli.io.dicom import load_series, scan_series

pytest.importorskip("pydicom")


def _volume():
    """A synthetic case as (column, row, slice) HU and a label map on the same grid."""
    img, lab = make_case((14, 12, 10), seed=3)  # canonical (z, y, x)
    return img.transpose(2, 1, 0).astype(np.float32), lab.transpose(2, 1, 0)


def _affine(rot: np.ndarray, spacing=(1.5, 1.25, 2.5), origin=(12.0, -40.0, 300.0), flips=(1, 1, 1)) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(np.asarray(spacing) * np.asarray(flips))
    aff[:3, 3] = origin
    return aff


OBLIQUE = rotation(0, 25.0) @ rotation(2, -15.0)
GEOMETRIES = {
    "axial": _affine(np.eye(3)),
    "oblique": _affine(OBLIQUE),
    "flipped": _affine(np.eye(3), flips=(-1, -1, 1)),  # rows and columns mirrored (LPS-stored)
    "oblique-flipped": _affine(OBLIQUE, flips=(-1, 1, -1)),  # the normal follows the flipped stack
}


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_series_reads_back_with_its_geometry(name, tmp_path):
    arr, _ = _volume()
    aff = GEOMETRIES[name]
    write_dicom_series(tmp_path / "s", arr, aff, reverse_numbers=name.endswith("flipped"))
    series = scan_series(tmp_path / "s")
    vol = load_series(series)
    assert series.shape == arr.shape
    np.testing.assert_allclose(vol.affine, aff, atol=1e-4)
    np.testing.assert_array_equal(vol.array, arr)


def test_a_stack_written_against_its_normal_comes_back_in_normal_order_same_world(tmp_path):
    """Slices are ordered along the normal, not by file or instance number: a stack stored the other way
    reads with its slice axis reversed, and every voxel keeps its world position."""
    arr, _ = _volume()
    aff = _affine(OBLIQUE, flips=(1, 1, -1))  # left-handed: slice k moves against row x column
    write_dicom_series(tmp_path / "s", arr, aff)
    vol = load_series(scan_series(tmp_path / "s"))
    flip = np.eye(4)
    flip[2, 2], flip[2, 3] = -1, arr.shape[2] - 1
    np.testing.assert_allclose(vol.affine, aff @ flip, atol=1e-4)
    np.testing.assert_array_equal(vol.array, arr[:, :, ::-1])


def test_two_series_in_one_folder_are_refused_naming_both(tmp_path):
    arr, _ = _volume()
    write_dicom_series(tmp_path / "s", arr, GEOMETRIES["axial"], series_uid="1.2.3.1")
    write_dicom_series(tmp_path / "s", arr, GEOMETRIES["axial"], series_uid="1.2.3.2", prefix="B")
    with pytest.raises(LocsegError) as err:
        scan_series(tmp_path / "s")
    assert str(err.value) == f"{tmp_path / 's'}: holds 2 DICOM series (1.2.3.1, 1.2.3.2); give each series its own folder"


def test_a_missing_slice_is_refused_naming_the_gap(tmp_path):
    arr, _ = _volume()
    write_dicom_series(tmp_path / "s", arr, GEOMETRIES["oblique"], skip=(4,))
    with pytest.raises(LocsegError, match=r"uneven slice spacing: 5 mm between IM\d+\.dcm and IM\d+\.dcm, "
                                          r"2\.5 mm elsewhere: missing slices\?"):
        scan_series(tmp_path / "s")


def test_duplicate_slices_and_stray_files(tmp_path):
    arr, _ = _volume()
    s = write_dicom_series(tmp_path / "s", arr, GEOMETRIES["axial"])
    (s / "notes.txt").write_text("not DICOM: ignored\n")
    (s / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    assert len(scan_series(s).files) == arr.shape[2]
    first = sorted(s.glob("*.dcm"))[0]
    (s / "copy.dcm").write_bytes(first.read_bytes())
    with pytest.raises(LocsegError, match="two slices at the same position"):
        scan_series(s)
    (s / "copy.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    with pytest.raises(LocsegError, match=r"copy\.dcm: no SeriesInstanceUID: not an image of a DICOM series"):
        scan_series(s)


def test_dicom_seg_opens_with_pydicom_and_highdicom_and_matches_the_label_map(tmp_path):
    hd = pytest.importorskip("highdicom")
    import pydicom

    from locseg_cli.io.dicom_seg import write_dicom_seg

    arr, lab = _volume()
    write_dicom_series(tmp_path / "s", arr, GEOMETRIES["oblique-flipped"], reverse_numbers=True)
    series = scan_series(tmp_path / "s")
    write_dicom_seg(tmp_path / "seg.dcm", lab, series, {0: "background", 1: "upper", 2: "lower"})
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    assert ds.Modality == "SEG" and [s.SegmentLabel for s in ds.SegmentSequence] == ["upper", "lower"]
    seg = hd.seg.Segmentation.from_dataset(ds)
    sources = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in series.files]
    # one frame per source slice and segment; the label map read back on the source slices' order
    back = seg.get_pixels_by_source_instance(sources, combine_segments=True)  # (slice, row, column)
    np.testing.assert_array_equal(back.transpose(2, 1, 0), lab)


def test_pydicom_is_imported_only_to_read_dicom(tmp_path, monkeypatch):
    """The extra is optional: importing locseg imports none of it (nibabel itself imports pydicom when it is
    installed, so highdicom is the witness), and DICOM without it is one line saying how to add it."""
    import subprocess
    import sys

    code = ("import sys; from locseg_cli.inference.stage import infer; from locseg_cli.io.dicom_seg import "
            "write_dicom_seg; from locseg_cli.app import main; print('highdicom' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
    arr, _ = _volume()
    write_dicom_series(tmp_path / "s", arr, GEOMETRIES["axial"])
    monkeypatch.setitem(sys.modules, "pydicom", None)  # as if not installed
    with pytest.raises(LocsegError) as err:
        scan_series(tmp_path / "s")
    assert str(err.value) == f"{tmp_path / 's'}: reading DICOM needs the optional DICOM dependencies: " \
                             "pip install 'locseg[dicom]'"
