"""Every reader finds the right cases, labels and geometry in a fixture tree of its layout."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dataset_trees import RAS_AFFINE, SHAPE, label, save, volume

from locseg_cli.datasets import detect_layout, open_dataset
from locseg_cli.datasets.base import layouts
from locseg_cli.datasets.tables import BTCV_LABELS, KITS23_EXCLUDED, KITS23_LABELS
from locseg_cli.datasets.writers import LAYOUT_WRITERS, DatasetWriter
from locseg_cli.errors import LocsegError
from locseg_cli.io.nifti import canonical_orientation, load_volume


def test_registration_order_keeps_generic_images_last():
    names = layouts()
    assert names[-1] == "images"
    assert {"btcv", "amos22", "kits23", "nnunet", "msd", "folder"} <= set(names)


def test_btcv(btcv_tree: Path):
    assert detect_layout(btcv_tree) == "btcv"
    ds = open_dataset(btcv_tree)
    assert [(c.case_id, c.label is not None) for c in ds.cases] == [("0001", True), ("0002", True), ("0061", False)]
    assert ds.labels == BTCV_LABELS and len(ds.labels) == 14 and ds.labels[10] == "portal and splenic vein"
    c = ds.case("0002")
    assert c.label.name == "label0002.nii.gz"
    vol = load_volume(c.image)
    assert vol.array.shape == SHAPE and vol.spacing == pytest.approx((0.8, 0.8, 2.5))
    np.testing.assert_array_equal(vol.array, volume(2))


def test_btcv_missing_training_label_is_an_error(btcv_tree: Path):
    (btcv_tree / "RawData/Training/label/label0002.nii.gz").unlink()
    with pytest.raises(LocsegError, match="case '0002' has no label file label/label0002.nii.gz"):
        open_dataset(btcv_tree, "btcv")


def test_amos22_ct_only(amos_tree: Path):
    assert detect_layout(amos_tree) == "amos22"
    ds = open_dataset(amos_tree)
    assert [c.case_id for c in ds.cases] == ["amos_0001", "amos_0005", "amos_0010", "amos_0100"]
    assert ds.skipped == {"amos_0507": "MRI"}
    assert [c.case_id for c in ds.labelled] == ["amos_0001", "amos_0005", "amos_0010"]
    assert ds.case("amos_0010").label == (amos_tree / "labelsVa/amos_0010.nii.gz").resolve()
    assert len(ds.labels) == 16 and ds.labels[8] == "arota" and ds.modality == "CT"


def test_kits23_axial_first_exclusions_and_missing_imaging(kits_tree: Path):
    assert detect_layout(kits_tree) == "kits23"
    assert detect_layout(kits_tree / "dataset") == "kits23"
    ds = open_dataset(kits_tree)
    assert [c.case_id for c in ds.cases] == ["case_00000"]
    assert ds.skipped["case_00088"] == KITS23_EXCLUDED["case_00088"]
    assert "not downloaded" in ds.skipped["case_00001"]
    assert ds.labels == KITS23_LABELS
    assert ds.regions == {"kidney_and_masses": (1, 2, 3), "masses": (2, 3), "tumor": (2,)}
    img = nib.load(str(ds.cases[0].image))
    assert nib.aff2axcodes(img.affine) == ("I", "P", "L")
    assert (int(img.header["qform_code"]), int(img.header["sform_code"])) == (0, 2)
    assert img.shape == SHAPE[::-1]  # axial axis first
    # reorienting by the affine gives back the same anatomy as the RAS original
    vol = load_volume(ds.cases[0].image)
    ornt, aff = canonical_orientation(vol.affine, vol.array.shape)
    ornt_ras, aff_ras = canonical_orientation(RAS_AFFINE, SHAPE)
    np.testing.assert_array_equal(ornt.to_canonical(vol.array), ornt_ras.to_canonical(volume(3)))
    np.testing.assert_allclose(aff, aff_ras, atol=1e-4)


def test_nnunet(tmp_path: Path):
    root = tmp_path / "Dataset001_X"
    save(root / "imagesTr/abc_0000.nii.gz", volume())
    save(root / "labelsTr/abc.nii.gz", label())
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1,
                                                  "b": 2}, "numTraining": 1, "file_ending": ".nii.gz"}))
    assert detect_layout(root) == "nnunet"
    ds = open_dataset(root)
    assert [c.case_id for c in ds.labelled] == ["abc"] and ds.labels == {0: "background", 1: "a", 2: "b"}


def test_msd_ignores_macos_junk(tmp_path: Path):
    root = tmp_path / "Task09_Spleen"
    for cid in ("spleen_2", "spleen_3"):
        save(root / "imagesTr" / f"{cid}.nii.gz", volume())
        save(root / "labelsTr" / f"{cid}.nii.gz", label((0, 1)))
    save(root / "imagesTs/spleen_1.nii.gz", volume())
    (root / "imagesTr/._spleen_2.nii.gz").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble file of the download
    (root / "dataset.json").write_text(json.dumps({
        "name": "Spleen", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "spleen"},
        "numTraining": 2, "numTest": 1,
        "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in ("spleen_2",
                                                                                                       "spleen_3")],
        "test": ["./imagesTs/spleen_1.nii.gz"]}))
    assert detect_layout(root) == "msd"
    ds = open_dataset(root)
    assert [(c.case_id, c.label is not None) for c in ds.cases] == [("spleen_2", True), ("spleen_3", True),
                                                                     ("spleen_1", False)]
    assert ds.labels == {0: "background", 1: "spleen"}


def test_msd_multichannel_is_refused(tmp_path: Path):
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "dataset.json").write_text(json.dumps({"modality": {"0": "T2", "1": "ADC"}, "labels": {"0": "bg"},
                                                       "training": []}))
    with pytest.raises(LocsegError, match="expected one image channel"):
        open_dataset(tmp_path, "msd")


@pytest.mark.parametrize("flat", [False, True])
def test_folder_with_labels_yaml(tmp_path: Path, flat: bool):
    if flat:
        save(tmp_path / "p1.nii.gz", volume())
        save(tmp_path / "p1_seg.nii.gz", label((0, 5)))
        save(tmp_path / "p2.nii", volume())
    else:
        save(tmp_path / "images/p1.nii.gz", volume())
        save(tmp_path / "labels/p1.nii.gz", label((0, 5)))
        save(tmp_path / "images/p2_0000.nii", volume())
    (tmp_path / "labels.yaml").write_text("labels:\n  0: background\n  5: liver\nmodality: CT\n")
    assert detect_layout(tmp_path) == "folder"
    ds = open_dataset(tmp_path)
    assert [(c.case_id, c.label is not None) for c in ds.cases] == [("p1", True), ("p2", False)]
    assert ds.labels == {0: "background", 5: "liver"}


def test_folder_without_table_is_an_image_folder(tmp_path: Path):
    save(tmp_path / "p1_0000.nii.gz", volume())
    assert detect_layout(tmp_path) == "images"
    assert [c.case_id for c in open_dataset(tmp_path).cases] == ["p1"]


@pytest.mark.parametrize("layout", sorted(LAYOUT_WRITERS))
def test_writer_output_is_read_by_the_matching_reader(tmp_path: Path, layout: str):
    table = {0: "background", 1: "ball", 2: "box"}
    w = DatasetWriter(tmp_path / layout, table, layout=layout, name="Synthetic")
    arrays = {cid: (volume(i), label((0, 1, 2), seed=i)) for i, cid in enumerate(["case_000", "case_001"])}
    for cid, (img, lab) in arrays.items():
        w.write_case(cid, img, lab, RAS_AFFINE)
    w.finish()
    assert detect_layout(tmp_path / layout) == layout
    ds = open_dataset(tmp_path / layout)
    assert ds.layout == layout and ds.labels == table  # the cohort's table, not the real dataset's
    assert [c.case_id for c in ds.labelled] == list(arrays)
    for c in ds.cases:
        for path, expected in ((c.image, arrays[c.case_id][0]), (c.label, arrays[c.case_id][1])):
            vol = load_volume(path)
            ornt, aff = canonical_orientation(vol.affine, vol.array.shape)
            ref_ornt, ref_aff = canonical_orientation(RAS_AFFINE, SHAPE)
            np.testing.assert_array_equal(ornt.to_canonical(vol.array), ref_ornt.to_canonical(expected))
            np.testing.assert_allclose(aff, ref_aff, atol=1e-4)
    if layout == "kits23":
        assert nib.aff2axcodes(nib.load(str(ds.cases[0].image)).affine) == ("I", "P", "L")
        assert ds.regions == {}  # the real regions mean nothing for another label table


def test_synth_layouts_are_read_by_their_readers(tmp_path: Path):
    pytest.importorskip("locseg_cli.commands.synth")
    from typer.testing import CliRunner

    from locseg_cli.app import app

    for layout in ("btcv", "amos22", "kits23"):
        out = tmp_path / layout
        # coarse voxels and no montage: the layouts are what is tested here, not the anatomy
        result = CliRunner().invoke(app, ["synth", "--out", str(out), "--cases", "2", "--layout", layout,
                                          "--spacing", "6,6,6", "--montage-cases", "0", "--workers", "0"])
        assert result.exit_code == 0, result.output
        assert detect_layout(out) == layout
        assert len(open_dataset(out).labelled) == 2


@pytest.mark.parametrize("layout", ["nnunet", "amos22", "msd"])
def test_class_groups_round_trip_through_dataset_json(tmp_path: Path, layout: str):
    labels = {0: "background", 1: "a", 2: "b", 3: "c"}
    w = DatasetWriter(tmp_path, labels, layout=layout, class_groups={"pair": (1, 3), "rest": (2,)})
    w.write_case("amos_0001" if layout == "amos22" else "case_0", volume(), label(), RAS_AFFINE)
    w.finish()
    assert json.loads((tmp_path / "dataset.json").read_text())["class_groups"] == {"pair": ["a", "c"], "rest": ["b"]}
    assert open_dataset(tmp_path).class_groups == {"pair": (1, 3), "rest": (2,)}
    dj = json.loads((tmp_path / "dataset.json").read_text())
    dj["class_groups"] = {"pair": ["a", "nope"]}
    (tmp_path / "dataset.json").write_text(json.dumps(dj))
    with pytest.raises(LocsegError, match="'nope', which is not a foreground label"):
        open_dataset(tmp_path)
