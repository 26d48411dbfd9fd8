"""make/paper.mk: the paper's targets as `make -n` prints them.

Every locseg command a target would run names presets that exist and resolve for every stage, reads
only what an earlier command of the same target wrote (or the user's data), and trains the paper's
configurations; a missing dataset is one line. The slow test runs the table2 chain on a tiny cohort.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from locseg_cli.config import find_preset, known_stages, resolve_config
from locseg_cli.preprocessing import PreprocessConfig
from locseg_cli.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("table1", "table2", "fig2", "fig3", "fig4", "postprocess-table", "paper")
# option -> the stage whose --out it must be (inputs written by an earlier command of the target)
INPUT_STAGES = {"--pre": {"preprocess"}, "--run": {"train"}, "--pred": {"infer", "postprocess"},
                "--atlas": {"atlas"}, "--bpr": {"bpr score", "bpr import"}}
REPORT_INPUTS = {"--runs": "train", "--evals": "evaluate", "--shifts": "shift-eval", "--pres": "preprocess"}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def run_make(*args: str, dry: bool = True, **variables: str | Path) -> subprocess.CompletedProcess:
    cmd = ["make", "--no-print-directory", "-C", str(REPO), *(["-n"] if dry else []), *args,
           *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=3600)


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    """Fake dataset and BPR model folders (make -n only checks that they are folders)."""
    dirs = {k: tmp_path / k.lower() for k in ("DATA_BTCV", "DATA_AMOS", "DATA_KITS", "BPR_MODEL")}
    for d in dirs.values():
        d.mkdir()
    return {**dirs, "PAPER_OUT": tmp_path / "paper", "FOLDS": "0 1"}


def locseg_commands(stdout: str) -> list[list[str]]:
    """The locseg command lines of `make -n` output (direct or under torchrun), as argv lists."""
    out = []
    for line in stdout.replace("\\\n", " ").splitlines():  # recipe lines continued with a backslash
        argv = shlex.split(line) if line.strip() else []
        if argv and Path(argv[0]).name in ("locseg", "torchrun"):
            out.append(argv)
    return out


def stage_of(argv: list[str]) -> str:
    """'train', 'bpr score', ... whatever launches it."""
    args = argv[argv.index("locseg_cli") + 1:] if Path(argv[0]).name == "torchrun" else argv[1:]
    return " ".join(args[:2]) if args[0] == "bpr" else args[0]


def options(argv: list[str]) -> dict[str, str]:
    opts = {}
    for i, a in enumerate(argv):
        if a.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            opts[a] = argv[i + 1]
    return opts


@cache
def resolves_everywhere(preset: str) -> bool:
    find_preset(preset)
    for cls in known_stages().values():
        resolve_config(cls, preset)
    return True


def dry_run(target: str, data: dict, **extra) -> list[list[str]]:
    proc = run_make(target, **{**data, **extra})
    assert proc.returncode == 0, proc.stderr
    cmds = locseg_commands(proc.stdout)
    assert cmds, proc.stdout
    return cmds


@pytest.mark.parametrize("target", TARGETS)
def test_every_command_uses_existing_presets_and_reads_earlier_outputs(target, data):
    cmds = dry_run(target, data)
    paper = Path(data["PAPER_OUT"])
    given = {str(data[k]) for k in ("DATA_BTCV", "DATA_AMOS", "DATA_KITS", "BPR_MODEL")}
    written: dict[str, str] = {}  # --out -> stage
    data_of: dict[str, str] = {}  # stage output -> the raw dataset behind it
    for argv in cmds:
        stage, opts = stage_of(argv), options(argv)
        if "--preset" in opts:
            assert resolves_everywhere(opts["--preset"])
        for opt, stages in INPUT_STAGES.items():
            if opt in opts:
                assert written.get(opts[opt]) in stages, f"{stage} {opt} {opts[opt]} was not written before"
        for opt, producer in REPORT_INPUTS.items():
            if opt in opts:
                inside = [o for o, s in written.items() if s == producer and Path(o).is_relative_to(opts[opt])]
                assert inside, f"report {opt} {opts[opt]} holds no {producer} output"
        for opt in ("--data", "--ref", "--bpreg-dir") + (("--model",) if stage == "bpr score" else ()):
            if opt in opts:
                assert opts[opt] in given, f"{stage} {opt} {opts[opt]} is neither data nor an output"
        # the raw data a chain was made from stays the same along it (infer --data, evaluate --ref)
        source = next((data_of[opts[o]] for o in ("--pre", "--run", "--pred") if opts.get(o) in data_of), None)
        raw = opts.get("--data", opts.get("--ref"))
        if source is not None and raw is not None:
            assert raw == source, f"{stage} reads {raw} but its inputs came from {source}"
        out = opts["--out"]
        assert out not in written, f"two commands write {out}"
        assert Path(out).is_relative_to(paper)
        written[out] = stage
        if source or raw:
            data_of[out] = source or raw
    assert {s for s in written.values()} >= {"preprocess", "train"}


def test_paper_report_reads_everything_the_targets_wrote(data):
    from locseg_cli.reporting.collect import MAX_DEPTH

    cmds = dry_run("paper", data)
    report = options(next(a for a in cmds if stage_of(a) == "report"))
    for argv in cmds:
        stage, out = stage_of(argv), Path(options(argv)["--out"])
        opt = next((o for o, s in REPORT_INPUTS.items() if s == stage), None)
        if opt:
            assert out.is_relative_to(report[opt]) and len(out.relative_to(report[opt]).parts) <= MAX_DEPTH


def _by_stage(cmds, stage):
    return [options(a) for a in cmds if stage_of(a) == stage]


def test_table1_trains_three_models_on_three_datasets_at_1mm_with_bpr_for_amos_and_kits(data):
    cmds = dry_run("table1", data)
    trains = _by_stage(cmds, "train")
    assert len(trains) == 3 * 3 * 2  # datasets x models x folds 0 1
    assert {(t["--model"], t["--fold"]) for t in trains} == {(m, f) for m in ("baseline", "coordconv", "locbam")
                                                             for f in "01"}
    for t in trains:
        cfg = resolve_config(TrainConfig, t["--preset"])
        assert (cfg.patch_size, cfg.batch_size, cfg.epochs, cfg.iterations_per_epoch) == ((128,) * 3, 2, 1000, 250)
        assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.features) == ("sgd", 0.01, 0.99, (32, 32, 64, 128, 256, 32))
    pres = _by_stage(cmds, "preprocess")
    by_data = {p["--data"]: p for p in pres}
    assert set(by_data) == {str(data[k]) for k in ("DATA_BTCV", "DATA_AMOS", "DATA_KITS")}
    for key, dataset, location in (("DATA_BTCV", "btcv", "volume"), ("DATA_AMOS", "amos22", "bpr"),
                                   ("DATA_KITS", "kits23", "bpr")):
        p = by_data[str(data[key])]
        cfg = resolve_config(PreprocessConfig, p["--preset"])
        assert (cfg.dataset, cfg.spacing, cfg.location) == (dataset, (1.0, 1.0, 1.0), location)
        assert ("--bpr" in p) == (location == "bpr")
    scores = _by_stage(cmds, "bpr score")
    assert sorted(s["--data"] for s in scores) == sorted(str(data[k]) for k in ("DATA_AMOS", "DATA_KITS"))
    assert all(s["--model"] == str(data["BPR_MODEL"]) for s in scores)
    assert len(_by_stage(cmds, "evaluate")) == len(trains)
    assert all(i["--subset"] == "val" for i in _by_stage(cmds, "infer"))


def test_bpreg_files_are_imported_instead_of_scored(data, tmp_path):
    bpreg = tmp_path / "bpreg-amos"
    bpreg.mkdir()
    cmds = dry_run("table1", {k: v for k, v in data.items() if k != "BPR_MODEL"}, BPREG_AMOS=bpreg,
                   BPREG_KITS=bpreg)
    imports = _by_stage(cmds, "bpr import")
    assert {(i["--bpreg-dir"], i["--data"]) for i in imports} == {(str(bpreg), str(data["DATA_AMOS"])),
                                                                  (str(bpreg), str(data["DATA_KITS"]))}
    assert not _by_stage(cmds, "bpr score")


def test_table2_spacings_and_patch_setups(data):
    cmds = dry_run("table2", data)
    setups = set()
    for t in _by_stage(cmds, "train"):
        assert t["--model"] in ("baseline", "locbam")
        pre = next(p for p in _by_stage(cmds, "preprocess") if p["--out"] == t["--pre"])
        spacing = resolve_config(PreprocessConfig, pre["--preset"]).spacing
        cfg = resolve_config(TrainConfig, t["--preset"])
        setups.add((spacing, cfg.patch_size, cfg.batch_size))
    small, large = ((32, 32, 32), 128), ((128, 128, 128), 2)
    assert setups == {((2.0, 1.5, 1.5), *small), ((2.0, 1.5, 1.5), *large), ((1.0, 1.0, 1.0), *small),
                      ((1.0, 1.0, 1.0), *large), ((3.0, 0.75, 0.75), *small), ((3.0, 0.75, 0.75), (48, 192, 192), 2)}
    assert len(_by_stage(cmds, "evaluate")) == 6 * 2 * 2


def test_fig4_and_postprocessing_at_lowres_small_patches(data):
    cmds = dry_run("fig4", data)
    shifts = _by_stage(cmds, "shift-eval")
    assert len(shifts) == 2 * 2 * 2  # coordconv/locbam x small/large x folds
    runs = {t["--out"]: t for t in _by_stage(cmds, "train")}
    assert {runs[s["--run"]]["--model"] for s in shifts} == {"coordconv", "locbam"}
    for s in shifts:
        cfg = resolve_config(known_stages()["shift-eval"], s["--preset"])
        assert cfg.shifts == [0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0] and cfg.axes == "axial"
    cmds = dry_run("postprocess-table", data)
    post = _by_stage(cmds, "postprocess")
    assert sorted(p["--method"] for p in post) == ["atlas", "atlas", "lcf", "lcf"]
    assert all(("--atlas" in p) == (p["--method"] == "atlas") for p in post)
    runs = {t["--out"]: t for t in _by_stage(cmds, "train")}
    preds = {i["--out"]: runs[i["--run"]] for i in _by_stage(cmds, "infer")}
    assert {preds[p["--pred"]]["--model"] for p in post} == {"baseline"}
    assert {resolve_config(TrainConfig, r["--preset"]).patch_size for r in runs.values()} == {(32, 32, 32)}
    assert len(_by_stage(cmds, "evaluate")) == 3 * 2 + 2 * 2  # models x folds + methods x folds


def test_nproc_trains_under_torchrun_and_device_reaches_every_gpu_stage(data):
    cmds = dry_run("fig4", data, NPROC=2, DEVICE="cuda:1")
    for argv in cmds:
        stage = stage_of(argv)
        if stage == "train":
            assert argv[:6] == [".venv/bin/torchrun", "--standalone", "--nproc_per_node", "2", "-m", "locseg_cli"]
        else:
            assert Path(argv[0]).name == "locseg"
        assert (options(argv).get("--device") == "cuda:1") == (stage in ("train", "infer", "shift-eval"))
    # torchrun runs `python -m locseg_cli train ...`: that module entry must be the CLI
    proc = subprocess.run([sys.executable, "-m", "locseg_cli", "train", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0 and "--pre" in proc.stdout
    assert all(Path(a[0]).name == "locseg" for a in dry_run("fig4", data, NPROC=1))


@pytest.mark.parametrize("drop, expect", [("DATA_AMOS", "DATA_AMOS is not set"),
                                          ("BPR_MODEL", "amos22's axial location is its Body Part Regression"),
                                          ("DATA_BTCV", "DATA_BTCV is not set")])
def test_missing_input_is_one_line(data, drop, expect):
    proc = run_make("table1", **{k: v for k, v in data.items() if k != drop})
    assert proc.returncode != 0 and not proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and expect in proc.stderr, proc.stderr


def test_bad_folder_and_nproc_are_one_line(data):
    proc = run_make("table2", **{**data, "DATA_BTCV": data["PAPER_OUT"] / "nowhere"})
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert "DATA_BTCV=" in proc.stderr and "is not a folder" in proc.stderr
    proc = run_make("table2", **{**data, "NPROC": "two"})
    assert proc.returncode != 0 and "NPROC must be a positive number" in proc.stderr


def test_other_targets_need_no_data():
    proc = run_make("help")
    assert proc.returncode == 0, proc.stderr
    proc = run_make("paper-help")
    assert proc.returncode == 0 and "make table1" in proc.stdout


def test_extra_preset_is_merged_over_every_paper_preset(data):
    cmds = dry_run("table2", data, EXTRA_PRESET="experiments/paper-smoke")
    wrappers = {options(a)["--preset"] for a in cmds}
    assert wrappers and all(Path(w).parent == Path(data["PAPER_OUT"]) / "presets" for w in wrappers)
    # make the wrappers for real (no data needed for that) and resolve them
    wrapper = Path(data["PAPER_OUT"]) / "presets" / "paper-btcv-median-large.yaml"
    proc = run_make(str(wrapper), dry=False, **{**data, "EXTRA_PRESET": "experiments/paper-smoke"})
    assert proc.returncode == 0, proc.stderr
    cfg = resolve_config(TrainConfig, str(wrapper))
    assert cfg.features == (4, 4, 8, 8, 16, 4) and cfg.optimizer == "sgd"  # smoke over paper
    pre = resolve_config(PreprocessConfig, str(wrapper))
    assert pre.spacing == (6.0, 6.0, 6.0) and pre.dataset == "btcv" and pre.window == (-175.0, 250.0)


@pytest.mark.slow
def test_table2_chain_runs_on_a_tiny_btcv_cohort(tmp_path):
    """The real chain (preprocess -> train -> infer -> evaluate, then the report) on 6 synthetic cases."""
    locseg = REPO / ".venv" / "bin" / "locseg"
    if not locseg.exists():
        pytest.skip("needs the project's .venv (make install)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([str(locseg), "synth", "--layout", "btcv", "--out", str(tmp_path / "raw"), "--cases", "6",
                    "--spacing", "6,6,6", "--montage-cases", "0", "--preset", "experiments/coarse"],
                   check=True, capture_output=True, env=env, timeout=600)
    variables = {"PAPER_OUT": tmp_path / "paper", "DATA_BTCV": tmp_path / "raw", "FOLDS": "0", "DEVICE": "cpu",
                 "EXTRA_PRESET": "experiments/paper-smoke",
                 "TABLE2_SETUPS": "btcv-lowres-small btcv-isotropic-large"}
    proc = run_make("table2", "paper-report", dry=False, **variables)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    paper = tmp_path / "paper"
    for setup in ("btcv-lowres-small", "btcv-isotropic-large"):
        for model in ("baseline", "locbam"):
            summary = json.loads((paper / "eval" / setup / f"{model}-fold0" / "summary.json").read_text())
            assert summary["metric_per_case"]  # scored the fold's validation cases
    report = (paper / "report" / "report.md").read_text()
    assert "Table 2" in report
    # a second run of one chain finds every stage cached
    again = run_make(str(paper / "eval" / "btcv-lowres-small" / "locbam-fold0" / "manifest.json"), dry=False,
                     **variables)
    assert again.returncode == 0, again.stderr
    said = " ".join((again.stdout + again.stderr).split())
    assert said.count("up to date") == 4, said  # preprocess, train, infer, evaluate


@pytest.mark.parametrize("variables", [{}, {"QUICK": "1"}, {"EXP": "experiments/location"}, {"SEED": "2"}])
def test_demo_chain_reads_only_what_earlier_stages_wrote(tmp_path, variables):
    """`make demo`'s chain (`make location-experiment` runs it with EXP=experiments/location): synth of a
    training and an external test cohort, preprocess, train x 5, infer and evaluate on the test cohort,
    shift-eval on it, report -- each stage's input folders written by an earlier stage, no test case
    trained on, the seeds as SEED says, every preset the chain names resolvable."""
    res = run_make("demo-report", DEMO=tmp_path / "d", **variables)
    assert res.returncode == 0, res.stderr
    cmds = locseg_commands(res.stdout)
    stages = [stage_of(c) for c in cmds]
    for stage in ("synth", "preprocess", "train", "infer", "evaluate", "shift-eval", "report"):
        assert stage in stages, stage
    assert stages.count("train") == 5 and stages[-1] == "report"
    assert_reads_only_earlier_outputs(cmds, tmp_path)
    seed = int(variables.get("SEED", 0))
    synth = {Path(o["--out"]).name: o for o in map(options, (c for c in cmds if stage_of(c) == "synth"))}
    assert int(synth["raw"]["--seed"]) == seed and int(synth["test-raw"]["--seed"]) == 100 + seed
    assert all(int(options(c)["--seed"]) == seed for c in cmds if stage_of(c) == "train")
    test_raw, raw = tmp_path / "d" / "test-raw", tmp_path / "d" / "raw"
    for c in cmds:  # models train on the training cohort only and are scored on the test cohort only
        o = options(c)
        if stage_of(c) == "preprocess":
            assert Path(o["--data"]) == raw
        if stage_of(c) in ("infer", "shift-eval"):
            assert Path(o["--data"]) == test_raw
        if stage_of(c) == "evaluate":
            assert Path(o["--ref"]) == test_raw
    report = options(cmds[-1])
    assert report["--title"].endswith(f"({variables.get('EXP', 'experiments/quick' if 'QUICK' in variables else 'experiments/demo')})")
    assert_presets_resolve(cmds)


def assert_reads_only_earlier_outputs(cmds: list[list[str]], root: Path) -> None:
    """Every folder a command reads under `root` was written (`--out`) by an earlier command."""
    written: list[Path] = []
    for argv in cmds:
        opts = options(argv)
        for flag, value in opts.items():
            if flag in ("--out", "--preset", "--title", "--method", "--shifts") and not (
                    flag == "--shifts" and stage_of(argv) == "report"):
                continue
            path = Path(value)
            if not path.is_relative_to(root):
                continue  # numbers, names
            assert any(w == path or w.is_relative_to(path) for w in written), (stage_of(argv), flag, value)
        written.append(Path(opts["--out"]))
        if stage_of(argv) == "report":  # the report refuses to write inside what it reads
            assert not Path(opts["--out"]).is_relative_to(opts["--pres"])


def assert_presets_resolve(cmds: list[list[str]]) -> None:
    for preset in {o["--preset"] for o in map(options, cmds) if "--preset" in o}:
        assert resolves_everywhere(preset), preset


@pytest.mark.parametrize("variables", [{}, {"QUICK": "1"}])
def test_fov_chain_trains_the_baseline_and_locbam_on_each_location_source(tmp_path, variables):
    """`make fov-experiment` (issues 3, 7): one cohort with varying field of view, preprocessed with each
    axial location source; BPR trained on a separate cohort and scored on this one; the baseline and
    LocBAM per source, inferred with the same source, evaluated, reported."""
    res = run_make("fov-report", FOV=tmp_path / "f", **variables)
    assert res.returncode == 0, res.stderr
    cmds = locseg_commands(res.stdout)
    assert_reads_only_earlier_outputs(cmds, tmp_path)
    assert_presets_resolve(cmds)
    synth = [options(c) for c in cmds if stage_of(c) == "synth"]
    assert {s["--out"] for s in synth} == {str(tmp_path / "f" / "raw"), str(tmp_path / "f" / "bpr-cohort")}
    pre = {options(c)["--location"]: options(c) for c in cmds if stage_of(c) == "preprocess"}
    assert set(pre) == {"volume", "truth", "bpr"} and pre["bpr"]["--bpr"] == str(tmp_path / "f" / "bpr")
    trains = {Path(options(c)["--out"]).name: options(c) for c in cmds if stage_of(c) == "train"}
    assert set(trains) == {"baseline-volume", "locbam-volume", "locbam-truth", "locbam-bpr"}
    for name, opts in trains.items():
        assert opts["--model"] == name.split("-")[0] and Path(opts["--pre"]) == tmp_path / "f" / "pre" / name.split("-")[1]
    infers = {Path(options(c)["--out"]).name: options(c) for c in cmds if stage_of(c) == "infer"}
    assert [n for n, o in infers.items() if "--bpr" in o] == ["locbam-bpr"]
    assert stage_of(cmds[-1]) == "report"
