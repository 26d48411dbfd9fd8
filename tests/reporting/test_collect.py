"""reporting.collect: how runs become table rows."""

from pathlib import Path

from locseg_cli.reporting.collect import RunRecord, Setup, name_location_variants


def _run(name: str, setup: Setup, model: str, location: str) -> RunRecord:
    return RunRecord(Path(name), None, setup, model, None, None, location)


def test_location_sources_of_one_model_in_one_setup_are_separate_rows():
    fov = Setup("Synth", (2.5, 4.0, 4.0), (32, 32, 32), 8)
    amos = Setup("AMOS22", (1.0, 1.0, 1.0), (128, 128, 128), 2)
    runs = [_run("b", fov, "baseline", "volume"), _run("bt", fov, "baseline", "truth"),
            _run("v", fov, "locbam", "volume"), _run("t", fov, "locbam", "truth"), _run("r", fov, "locbam", "bpr"),
            _run("v2", fov, "locbam", "volume"),  # a second fold of the same variant: the same row
            _run("c", fov, "coordconv", "volume"), _run("a", amos, "locbam", "bpr")]
    name_location_variants(runs)
    assert [r.model for r in runs] == [
        "baseline", "baseline", "locbam (volume location)", "locbam (truth location)", "locbam (bpr location)",
        "locbam (volume location)", "coordconv", "locbam"]
