"""Time reading a CT-sized DICOM series (`io.dicom`) against reading the same volume as .nii.gz, and writing
the DICOM SEG of its 13-organ label map (`io.dicom_seg`): what DICOM input adds to `infer` per scan.

Usage: python benchmarks/bench_dicom.py --out bench-out/dicom.json [--slices 120] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from benchlib import ct_case, interleaved, machine, medians, stderr, write_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' DICOM series writer

from synthdata import write_dicom_series  # noqa: E402

from locseg_cli.io.dicom import load_series, scan_series  # noqa: E402
from locseg_cli.io.dicom_seg import write_dicom_seg  # noqa: E402
from locseg_cli.io.nifti import load_volume, save_volume  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="40 slices, 2 rounds")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.slices, args.rounds = min(args.slices, 40), min(args.rounds, 2)
    image, label, affine = ct_case((512, 512, args.slices), (0.8, 0.8, 2.5))
    names = {0: "background", **{v: f"organ {v}" for v in range(1, int(label.max()) + 1)}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_dicom_series(tmp / "series", image.astype(np.float32), affine)
        save_volume(tmp / "scan.nii.gz", image, affine)
        series = scan_series(tmp / "series")
        tasks = {"dicom_read": lambda: load_series(scan_series(tmp / "series")),
                 "nifti_read": lambda: load_volume(tmp / "scan.nii.gz"),
                 "dicom_seg_write": lambda: write_dicom_seg(tmp / "seg.dcm", label, series, names)}
        cpu: dict[str, list[float]] = {}
        samples = interleaved(tasks, args.rounds, log=stderr, cpu=cpu)
        seg_mb = (tmp / "seg.dcm").stat().st_size / 2**20
    med = medians(cpu)  # CPU seconds: single-threaded work, less hit than wall time by other jobs on the cores
    print(f"512x512x{args.slices}, CPU seconds: DICOM read {med['dicom_read']:.2f} s, NIfTI (.nii.gz) read "
          f"{med['nifti_read']:.2f} s ({med['dicom_read'] / med['nifti_read']:.2f}x); DICOM SEG write "
          f"{med['dicom_seg_write']:.2f} s, {seg_mb:.1f} MiB for {len(names) - 1} segments (medians of {args.rounds})")
    if args.out:
        write_result(args.out, {"benchmark": "dicom read and DICOM SEG write", "shape": [512, 512, args.slices],
                                "wall_s": samples, "cpu_s": cpu, "median_cpu_s": med, "seg_mib": seg_mb,
                                "segments": len(names) - 1, "command": " ".join(sys.argv), "machine": machine(1)})


if __name__ == "__main__":
    main()
