"""reporting.figures: what a figure looks like does not depend on the process that drew it."""

import subprocess
import sys


def test_colour_of_an_unlisted_model_is_the_same_in_every_process():
    code = "from locseg_cli.reporting.figures import _color; print(_color('locbam (truth location)'))"
    colours = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(colours) == 1 and colours.pop().startswith("#")
