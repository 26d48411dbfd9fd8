"""Progress output: live bars on a terminal, plain status lines in logs or when asked for."""

from __future__ import annotations

import re

import pytest

from locseg_cli.console import RichProgress


def _run(n: int) -> None:
    with RichProgress() as p:
        p.start("train demo", total=n)
        for _ in range(n):
            p.advance(1, loss=0.5)
        p.stop()


@pytest.mark.parametrize("lines_only", [True, False])
def test_status_lines_name_the_task_and_its_count(monkeypatch, capsys, lines_only):
    monkeypatch.setattr(RichProgress, "LOG_EVERY_S", -1.0)  # a line at every step
    if lines_only:
        monkeypatch.setenv("LOCSEG_PROGRESS", "lines")
    else:
        monkeypatch.delenv("LOCSEG_PROGRESS", raising=False)
    _run(3)
    err = capsys.readouterr().err
    for i in (1, 2):
        assert re.search(f"train demo: {i}/3  (eta \\d:\\d\\d:\\d\\d  )?loss 0.5", err), err
    assert re.search("train demo: 2/3  eta 0:00:0\\d  loss 0.5", err)  # from the measured rate of the steps so far
    assert "train demo: 3/3  loss 0.5" in err  # finished: no ETA
    assert ("━" in err) != lines_only  # the bar itself only without LOCSEG_PROGRESS=lines


def test_quiet_between_status_lines(monkeypatch, capsys):
    monkeypatch.setenv("LOCSEG_PROGRESS", "lines")
    _run(5)  # LOG_EVERY_S = 30 s: no line during the loop, one final line at stop
    err = capsys.readouterr().err
    assert err.count("train demo:") == 1 and "train demo: 5/5" in err
