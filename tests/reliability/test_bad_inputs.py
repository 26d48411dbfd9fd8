"""The bad-input corpus, end to end through the CLI: one line naming the file and the problem, exit 2,
no traceback, and the --out folder exactly as it was (absent stays absent, a previous output untouched).

Each row: (id, builder from corpus.py, command line, expected message). Placeholders: {w} the world
copy, {out} the --out folder, {bad} the path the builder returns. Adding an item is one row.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import corpus
import pytest
from world import world_fixture, world_template_fixture  # noqa: F401  (fixtures)

from locseg_cli.app import main

PRE = "preprocess --data {w}/raw --out {out} --spacing 2,2,2 --folds 2"
INFER = "infer --run {w}/run --out {out} --threads 1"
TRAIN = "train --out {out} --features 4,4,8,8,16,4 --patch-size 16,16,32 --batch-size 2 --epochs 1 " \
        "--iterations-per-epoch 1 --workers 0 --threads 1 --fold -1"

SKIP = "; use --skip-invalid to go on without them"  # the integrity check's advice

CORPUS = [
    # raw images and labels, met by preprocess (its integrity check)
    ("truncated-gz", corpus.truncated_image, PRE,
     '{bad}: truncated: the file ends before its image data do' + SKIP),
    ("corrupted-gz", corpus.corrupted_image, PRE,
     '{bad}: corrupted: the compressed image data do not decompress (Error -3 while decompressing data: invalid distance too far back)' + SKIP),
    ("not-nifti", corpus.not_nifti_image, PRE,
     '{bad}: unreadable: not a NIfTI file' + SKIP),
    ("image-2d", corpus.image_2d, PRE,
     '{bad}: not 3D: shape (18, 20)' + SKIP),
    ("image-4d", corpus.image_4d, PRE,
     '{bad}: not 3D: shape (18, 20, 24, 2) has 2 frames' + SKIP),
    ("nan-voxels", corpus.nan_voxels, PRE,
     '{bad}: 1 non-finite voxel (NaN or Inf)' + SKIP),
    ("inf-voxels", corpus.inf_voxels, PRE,
     '{bad}: 2 non-finite voxels (NaN or Inf)' + SKIP),
    ("zero-spacing", corpus.zero_spacing, PRE,
     '{bad}: spacing (1.5, 1.5, 0) mm: not positive' + SKIP),
    ("negative-spacing", corpus.negative_spacing, PRE,
     '{bad}: spacing (-1.5, 1.5, 2) mm: not positive' + SKIP),
    ("label-shape", corpus.label_shape_mismatch, PRE,
     "{bad}: shape (16, 20, 24) differs from the image's (18, 20, 24)" + SKIP),
    ("label-affine", corpus.label_affine_mismatch, PRE,
     "{bad}: affine differs from the image's: voxel grid displaced by up to 8.66 mm (tolerance 0.15 mm)" + SKIP),
    ("float-labels", corpus.float_labels, PRE,
     '{bad}: label values are not integers (e.g. 0.5)' + SKIP),
    ("label-outside-table", corpus.label_outside_table, PRE,
     '{bad}: label value 7 not in the label table (0-2)' + SKIP),
    ("empty-data", corpus.empty_data_folder, "preprocess --data {bad} --out {out}",
     '{bad}: no known dataset layout here (known: nnunet, btcv, amos22, msd, kits23, folder, images)'),
    ("dataset-json-missing-key", corpus.dataset_json_missing_key, PRE,
     "{bad}: missing key 'labels'"),
    ("dataset-json-not-json", corpus.dataset_json_not_json, PRE,
     '{bad}: not valid JSON (Unterminated string starting at: line 12 column 3 (char 153))'),
    ("dataset-json-path-escapes", corpus.decathlon_path_escapes, "preprocess --data {bad} --out {out}",
     "{bad}: path './imagesTr/../../raw/imagesTr/case_000_0000.nii.gz' escapes its folder"),
    # presets
    ("preset-unknown-key", corpus.preset_unknown_key, PRE + " --preset {bad}",
     "{bad}: unknown option 'spacnig' in section 'preprocess'"),
    ("preset-wrong-type", corpus.preset_wrong_type, PRE + " --preset {bad}",
     "{bad}: option 'spacing': unknown name 'fast'; give one of cpu-coarse, dataset-median, isotropic, lowres, "
     "median, or three numbers z,y,x in mm"),
    ("preset-python-tag", corpus.preset_runs_code, PRE + " --preset {bad}",
     "{bad}: not valid YAML (could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system')"),
    # bpreg files
    ("bpreg-not-json", corpus.bpreg_not_json, "bpr import --bpreg-dir {w}/bpreg --out {out}",
     '{bad}: not valid JSON (Expecting value: line 1 column 33 (char 32))'),
    ("bpreg-missing-key", corpus.bpreg_missing_key, "bpr import --bpreg-dir {w}/bpreg --out {out}",
     "{bad}: not a bpreg score file (no list 'cleaned slice scores')"),
    # stage outputs as inputs
    ("pre-newer-schema", corpus.pre_newer_schema, TRAIN + " --pre {w}/pre",
     '{bad}: manifest schema 99 is newer than this locseg understands (1); upgrade locseg'),
    ("pre-case-id-separator", corpus.pre_case_id_with_separator, TRAIN + " --pre {w}/pre",
     "{bad}: invalid case id '../evil': use letters, digits, '_', '-', '.' (no path separators)"),
    ("pre-file-escapes", corpus.pre_file_escapes, TRAIN + " --pre {w}/pre",
     "{bad}: path '../raw/imagesTr/case_000_0000.nii.gz' escapes its folder"),
    ("pre-empty", corpus.empty_pre_folder, TRAIN + " --pre {bad}",
     '{bad}: no manifest.json here: expected a `locseg preprocess` output'),
    ("run-newer-schema", corpus.run_newer_schema, INFER + " --pre {w}/pre",
     '{bad}: manifest schema 2 is newer than this locseg understands (1); upgrade locseg'),
    ("infer-pre-file-escapes", corpus.pre_file_escapes, INFER + " --pre {w}/pre",
     "{bad}: path '../raw/imagesTr/case_000_0000.nii.gz' escapes its folder"),
    ("checkpoint-other-model", corpus.checkpoint_of_another_model, INFER + " --pre {w}/pre",
     "{bad}: weights of another model: they do not fit this run's model 'baseline' (1 mis-shaped tensor, e.g. 'unet.conv_0.conv_0.conv.weight')"),
    ("checkpoint-runs-code", corpus.checkpoint_runs_code, INFER + " --pre {w}/pre",
     '{bad}: refused: it holds Python objects, not only tensors, and loading them could run code (not a locseg checkpoint)'),
    ("infer-not-nifti", corpus.images_not_nifti, INFER + " --data {w}/images",
     '{bad}: unreadable: not a NIfTI file'),
    ("infer-truncated", corpus.images_truncated, INFER + " --data {w}/images",
     '{bad}: truncated: the file ends before its image data do'),
    ("infer-empty-data", corpus.empty_data_folder, INFER + " --data {bad}",
     '{bad}: no known dataset layout here (known: nnunet, btcv, amos22, msd, kits23, folder, images)'),
    ("infer-dicom-two-series", corpus.dicom_two_series, INFER + " --data {bad}",
     "{bad}: holds 2 DICOM series (1.2.9.1, 1.2.9.2); give each series its own folder"),
    ("infer-dicom-missing-slice", corpus.dicom_missing_slice, INFER + " --data {bad}",
     "{bad}: uneven slice spacing: 4 mm between IM015838.dcm and IM031676.dcm, 2 mm elsewhere: missing slices?"),
    ("infer-not-an-image", corpus.not_an_image, INFER + " --data {bad}",
     "{bad}: not an image: give a NIfTI file (.nii, .nii.gz), a folder of them, a dataset or a DICOM series folder"),
    ("infer-ensemble-disagrees", corpus.run_other_spacing, INFER + " --run {bad} --pre {w}/pre",
     "runs {w}/run and {bad} disagree on spacing (2.0,2.0,2.0 vs 3.0,2.0,2.0): an ensemble needs runs trained "
     "on the same preprocessing"),
    ("shift-over-100", None, INFER + " --pre {w}/pre --shift 150",
     '--shift must be within 0..100 %, got 150.0'),
    ("shift-negative", None, INFER + " --pre {w}/pre --shift -5",
     '--shift must be within 0..100 %, got -5.0'),
    ("evaluate-pred-not-nifti", corpus.preds_not_nifti, "evaluate --pred {w}/preds --ref {w}/raw --out {out}",
     '{bad}: not a readable NIfTI file (File {bad} is not a gzip file)'),
]


def snapshot(folder: Path) -> dict[str, tuple[int, int]] | None:
    """Names, sizes and mtimes of everything under `folder` (None when it does not exist)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def _argv(template: str, world: Path, out: Path, bad: Path | None) -> list[str]:
    return [a.format(w=world, out=out, bad=bad) for a in template.split()]


def prepare_out(world: Path, command: str, state: str) -> Path:
    """--out as a test finds it: absent, an empty folder, or a finished output of the same stage."""
    out = world / "out" / "nested"  # absent: neither it nor its parent may be created
    if state == "empty":
        out.mkdir(parents=True)
    elif state == "previous":
        stage = command.split()[0]
        shutil.copytree(world / {"preprocess": "pre", "train": "run"}[stage], out)
    return out


def run_inprocess(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


def _out_states(command: str, seen: set[str]) -> list[str]:
    """Every row with an absent --out; the first row of each stage also with an empty one; preprocess and
    train rows also over a finished output of their stage (the case where there is most to lose)."""
    stage = command.split()[0]
    states = ["absent"] + (["empty"] if stage not in seen else [])
    seen.add(stage)
    return states + (["previous"] if stage in ("preprocess", "train") else [])


_seen: set[str] = set()
CASES = [pytest.param(*row, state, id=f"{row[0]}-{state}") for row in CORPUS for state in _out_states(row[2], _seen)]


@pytest.mark.parametrize("name, build, command, expected, state", CASES)
def test_bad_input_is_one_line_and_leaves_out_untouched(name, build, command, expected, state, world, capsys):
    out = prepare_out(world, command, state)
    bad = build(world) if build else None
    before = snapshot(world / "out")
    code, err = run_inprocess(_argv(command, world, out, bad), capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2
    assert lines == ["error: " + expected.format(w=world, out=out, bad=bad)], err
    assert snapshot(world / "out") == before  # nothing created, nothing lost, nothing touched
    assert not (world / "PWNED").exists()  # no code from a data file ran


SUBPROCESS_ROWS = ["truncated-gz", "preset-python-tag", "bpreg-not-json", "checkpoint-runs-code",
                   "infer-dicom-two-series"]


@pytest.mark.parametrize("row", [r for r in CORPUS if r[0] in SUBPROCESS_ROWS], ids=SUBPROCESS_ROWS)
def test_bad_input_in_a_real_process(row, world):
    """The same contract in a real `python -m locseg_cli` process: stderr is that one line, no traceback."""
    name, build, command, expected = row
    out = prepare_out(world, command, "absent")
    bad = build(world) if build else None
    env = {**os.environ, "COLUMNS": "80"}  # a narrow terminal must not wrap the line
    proc = subprocess.run([sys.executable, "-m", "locseg_cli", *_argv(command, world, out, bad)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: " + expected.format(w=world, out=out, bad=bad)], proc.stderr
    assert "Traceback" not in proc.stderr and not (world / "out").exists() and not (world / "PWNED").exists()
