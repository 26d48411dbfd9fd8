"""Packaging beyond pyproject.toml: the top-level `presets/` ships inside the wheel as `locseg_cli/presets`.

`presets/` stays the one copy in the repository (a clone reads it in place); the mapping below makes
an installed wheel carry it too, so `pip install .` gives a `locseg` that finds its presets anywhere.
Each preset folder is named as a (data-only) package, so setuptools copies it without warnings.
"""

from setuptools import find_namespace_packages, find_packages, setup

PRESETS = ["locseg_cli.presets", *(f"locseg_cli.presets.{p}" for p in find_namespace_packages("presets"))]

setup(
    packages=[*find_packages(include=["locseg_cli", "locseg_cli.*"]), *PRESETS],
    package_dir={"locseg_cli.presets": "presets"},
    package_data={p: ["*.yaml"] for p in PRESETS},
)
