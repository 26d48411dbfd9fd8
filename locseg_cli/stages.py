"""The stages, declared once: each one's config module, in pipeline order.

`config.py` is the mechanism (presets, resolution, coercion) and knows no stage; its registry of
stage configs loads these modules by name when a preset is checked against every stage's options.
"""

STAGE_CONFIG_MODULES: tuple[str, ...] = tuple(f"locseg_cli.{pkg}.config" for pkg in (
    "phantom", "bpr", "preprocessing", "atlas", "training", "inference", "postprocessing", "evaluation", "shift",
    "reporting"))
