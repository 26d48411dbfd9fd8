"""One thin module per subcommand: parse options, resolve the config, call one core function."""

# (subcommand name, module under locseg_cli.commands), in pipeline order for `locseg --help`.
REGISTERED: list[tuple[str, str]] = [
    ("synth", "synth"),
    ("check", "check"),
    ("preprocess", "preprocess"),
    ("train", "train"),
    ("infer", "infer"),
    ("evaluate", "evaluate"),
    ("atlas", "atlas"),
    ("postprocess", "postprocess"),
    ("bpr", "bpr"),
    ("models", "models"),
    ("shift-eval", "shift_eval"),
    ("export", "export"),
    ("report", "report"),
]
