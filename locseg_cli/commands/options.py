"""The options every subcommand shares, defined once so they mean the same thing everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_dir = {"exists": True, "file_okay": False, "dir_okay": True, "resolve_path": False}

Data = Annotated[Path, typer.Option("--data", help="A raw dataset (any supported layout) or a folder of images.",
                                    **_dir)]
Pre = Annotated[Path, typer.Option("--pre", help="A `locseg preprocess` output.", **_dir)]
Run = Annotated[Path, typer.Option("--run", help="A `locseg train` output.", **_dir)]
Runs = Annotated[list[Path], typer.Option("--run", metavar="DIR", **_dir,
                                          help="A `locseg train` output; repeat it for an ensemble "
                                               "(mean softmax probability).")]
Pred = Annotated[Path, typer.Option("--pred", help="Predictions (`infer` or `postprocess` output).", **_dir)]
Ref = Annotated[Path, typer.Option("--ref", help="Reference labels: a raw dataset or a folder of label files.",
                                   **_dir)]
Out = Annotated[Path, typer.Option("--out", help="Where this stage writes (required, never inferred).",
                                   file_okay=False)]
Preset = Annotated[str | None, typer.Option("--preset", help="A preset name under presets/ or a YAML file; "
                                                                 "command-line options override it.")]
Model = Annotated[str | None, typer.Option("--model", help="A model registry name (see `locseg models`).")]
Workers = Annotated[int | None, typer.Option("--workers", min=0, help="Worker processes.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed.")]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda or cuda:N (default: cuda if available).")]
Force = Annotated[bool, typer.Option("--force", help="Redo the stage even if it is up to date.")]


def config_options(config_cls: type, exclude: tuple[str, ...] = ()):
    """Decorator: add one `--option` per field of a stage config to a command.

    Every preset option is thereby also a command-line option (same name, dashes for underscores),
    defined once, in the config dataclass. Values arrive as text and are parsed by the same code that
    reads presets (`locseg_cli.config.coerce`): lists as `2,1.5,1.5`, booleans as `--x/--no-x`.
    The decorated function receives them as one dict, `overrides` (unset options are absent).
    """
    import dataclasses
    import functools
    import inspect
    import typing

    hints = typing.get_type_hints(config_cls)

    def wrap(fn):
        sig = inspect.signature(fn)
        own = set(sig.parameters) - {"overrides"}
        extra = []
        names = []
        for f in dataclasses.fields(config_cls):
            if f.name in own or f.name in exclude:
                continue
            flag = "--" + f.name.replace("_", "-")
            default = f.default if f.default is not dataclasses.MISSING else None
            shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
            if hints[f.name] is bool:
                opt = typer.Option(f"{flag}/--no-{flag[2:]}", help=f"default: {shown}", show_default=False)
                ann = bool | None
            else:
                opt = typer.Option(flag, help=f"{_named_help(config_cls, f.name)}{_type_name(hints[f.name])}; "
                                              f"default: {shown}", show_default=False)
                ann = str | None
            extra.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                           annotation=Annotated[ann, opt]))
            names.append(f.name)

        @functools.wraps(fn)
        def command(**kwargs):
            overrides = {n: kwargs.pop(n) for n in names if kwargs.get(n) is not None}
            for n in names:
                kwargs.pop(n, None)
            return fn(**kwargs, overrides=overrides)

        resolved = typing.get_type_hints(fn, include_extras=True)
        params = [p.replace(annotation=resolved.get(p.name, p.annotation))
                  for p in sig.parameters.values() if p.name != "overrides"]
        command.__signature__ = sig.replace(parameters=params + extra)
        command.__annotations__ = {}
        return command

    return wrap


def _named_help(config_cls: type, name: str) -> str:
    """'lowres|isotropic|... or ' where an option also takes preset names (`NAMED_VALUES`)."""
    from ..config import preset_names

    named = getattr(config_cls, "NAMED_VALUES", {}).get(name)
    return f"{'|'.join(preset_names(named[0]))} (presets/{named[0]}/) or " if named else ""


def _type_name(hint) -> str:
    import types
    import typing

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return "|".join(map(str, args))
    if origin in (tuple, list):
        inner = _type_name(args[0]) if args else "value"
        return f"{inner} list (a,b,...)"
    if origin is typing.Union or isinstance(hint, types.UnionType):
        return _type_name(next(a for a in args if a is not type(None)))
    return getattr(hint, "__name__", str(hint))
