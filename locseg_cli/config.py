"""Presets and resolved configs.

Every stage has one dataclass config (`PreprocessConfig`, `TrainConfig`, ...). Its fields are the
stage's options: a preset YAML can set any of them and the command line overrides the preset.
The resolved config is written into the stage's manifest, so an output always says how it was made.

A preset is a YAML mapping. Top-level keys that name a stage (`preprocess:`, `train:`, ...) hold
that stage's options; other top-level keys are shared options given to every stage that has a
field of that name; `include:` lists other presets merged first (later wins). Presets are found
by name under `presets/` (a clone's; an installed wheel carries them as `locseg_cli/presets/`),
recursively (e.g. `lowres` or `spacing/lowres`), or given as a file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import LocsegError
from .registry import Registry
from .stages import STAGE_CONFIG_MODULES


def _preset_root() -> Path:
    """Where the presets are: inside the package in an installed wheel, else the clone's `presets/`.

    The repository keeps one copy, the top-level `presets/`; `setup.py` maps it into the wheel as
    `locseg_cli/presets`, so both a clone (editable or not installed) and a wheel find them.
    """
    package = Path(__file__).resolve().parent
    installed = package / "presets"
    return installed if installed.is_dir() else package.parent / "presets"


PRESET_ROOT = _preset_root()

STAGE_CONFIGS: Registry[type] = Registry("stage", STAGE_CONFIG_MODULES)

C = TypeVar("C")


def stage_config(stage: str):
    """Class decorator: register a dataclass as the config of `stage`."""

    def wrap(cls):
        cls = dataclasses.dataclass(cls)
        cls.STAGE = stage
        return STAGE_CONFIGS.add(stage, cls)

    return wrap


def known_stages() -> dict[str, type]:
    """Every stage's config class (presets are checked against all of them)."""
    return STAGE_CONFIGS.entries()


def find_preset(name_or_file: str | Path) -> Path:
    """The YAML file of a preset given by file path or by name under `presets/`."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    if p.suffix in (".yaml", ".yml"):
        raise LocsegError("preset file not found", p)
    direct = PRESET_ROOT / f"{name_or_file}.yaml"
    if direct.is_file():
        return direct
    hits = sorted(PRESET_ROOT.rglob(f"{p.name}.yaml")) if PRESET_ROOT.is_dir() else []
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        names = ", ".join(str(h.relative_to(PRESET_ROOT).with_suffix("")) for h in hits)
        raise LocsegError(f"preset name is ambiguous ({names}); give the folder too", name_or_file)
    raise LocsegError(f"no such preset (looked in {PRESET_ROOT})", name_or_file)


def load_preset(name_or_file: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a preset and its includes into one mapping (later keys win, stage sections merge)."""
    path = find_preset(name_or_file).resolve()
    if path in _seen:
        raise LocsegError("preset includes itself", path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise LocsegError(f"not valid YAML ({str(exc).splitlines()[0]})", path) from None
    if not isinstance(data, dict):
        raise LocsegError("a preset must be a mapping of option: value", path)
    includes = data.pop("include", []) or []
    if isinstance(includes, str):
        includes = [includes]
    merged: dict[str, Any] = {}
    for inc in includes:
        _merge(merged, load_preset(inc, _seen + (path,)))
    _merge(merged, data)
    _check_keys(merged, path)
    return merged


def _merge(base: dict, new: dict) -> None:
    for k, v in new.items():
        if k in STAGE_CONFIGS and isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k].update(v)
        else:
            base[k] = v


def _check_keys(preset: dict, path: Path) -> None:
    stages = STAGE_CONFIGS.entries()
    all_fields = {f.name for cls in stages.values() for f in dataclasses.fields(cls)}
    for k, v in preset.items():
        if k in stages:
            if not isinstance(v, dict):
                raise LocsegError(f"section '{k}' must be a mapping", path)
            fields = {f.name for f in dataclasses.fields(stages[k])}
            for sk in v:
                if sk not in fields:
                    raise LocsegError(f"unknown option '{sk}' in section '{k}'", path)
        elif stages and k not in all_fields:
            raise LocsegError(f"unknown option '{k}'", path)


def resolve_config(cls: type[C], preset: str | Path | None = None, overrides: dict[str, Any] | None = None,
                   base: dict[str, Any] | None = None) -> C:
    """Defaults <- `base` (e.g. a run's saved config) <- preset <- non-None command-line overrides.

    A named value (`--spacing lowres`, `patch_size: large` in a preset) counts as what that preset
    sets at the same level, so the options given beside it still win (see `NAMED_VALUES`).
    """
    stage = getattr(cls, "STAGE", cls.__name__)  # a plain config (ModelConfig) reads a stage's saved values
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if base:
        values.update({k: v for k, v in base.items() if k in fields})
    hints = typing.get_type_hints(cls)
    out = {k: coerce(v, hints[k], f"saved option '{k}'") for k, v in values.items()}
    if preset is not None:
        source = str(find_preset(preset))
        layer = _expand_names(cls, _stage_values(cls, load_preset(preset)), lambda k: f"{source}: option '{k}'")
        out.update({k: _coerce_field(cls, k, v, hints[k], f"{source}: option '{k}'") for k, v in layer.items()})
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    for k in given:
        if k not in fields:
            raise LocsegError(f"unknown option '{k}' for {stage}")
    layer = _expand_names(cls, given, _flag)
    out.update({k: _coerce_field(cls, k, v, hints[k], _flag(k)) for k, v in layer.items()})
    cfg = cls(**out)
    validate = getattr(cfg, "validate", None)
    if validate:
        validate()
    return cfg


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _stage_values(cls: type, preset: dict[str, Any]) -> dict[str, Any]:
    """What a preset sets for `cls`: shared top-level options it has a field for, then its stage section."""
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in preset.items() if k in fields}
    values.update(preset.get(getattr(cls, "STAGE", cls.__name__), {}) or {})
    return values


def preset_names(folder: str) -> list[str]:
    """The presets of one folder of `presets/`: the names a named option (`--spacing lowres`) accepts."""
    return sorted(p.stem for p in (PRESET_ROOT / folder).glob("*.yaml"))


def _named(cls: type, name: str) -> tuple[str, str] | None:
    """(preset folder, what else it takes) when option `name` of `cls` also takes preset names."""
    return getattr(cls, "NAMED_VALUES", {}).get(name)


def _expand_names(cls: type, layer: dict[str, Any], where) -> dict[str, Any]:
    """Replace each named value by what its preset sets; the layer's own other options win over those."""
    out = dict(layer)
    for name, value in layer.items():
        named = _named(cls, name)
        if named is None or not (isinstance(value, str) and value[:1].isalpha()):
            continue  # numbers (or a list) go to `coerce` as they are
        folder, otherwise = named
        names = preset_names(folder)
        if value not in names:
            raise LocsegError(f"{where(name)}: unknown name {value!r}; give one of {', '.join(names)}, or {otherwise}")
        del out[name]
        out = {**_stage_values(cls, load_preset(f"{folder}/{value}")), **out}
    return out


def _coerce_field(cls: type, name: str, value: Any, hint: Any, where: str) -> Any:
    """`coerce`, whose error on a named option also lists the names it takes."""
    try:
        return coerce(value, hint, where)
    except LocsegError as exc:
        named = _named(cls, name)
        if named is None:
            raise
        raise LocsegError(f"{exc.message} (or a name: {', '.join(preset_names(named[0]))})", exc.path) from None


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or fail with one line naming `where`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, where)
            except LocsegError as e:
                errors.append(e)
        raise errors[0]
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [s for s in value.replace(" ", "").split(",") if s]
        if not isinstance(value, (list, tuple)):
            raise LocsegError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise LocsegError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(coerce(v, a, where) for v, a in zip(value, args))
        item = args[0] if args else Any
        seq = [coerce(v, item, where) for v in value]
        return tuple(seq) if origin is tuple else seq
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise LocsegError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in args:
            raise LocsegError(f"{where}: must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise LocsegError(f"{where}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise LocsegError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise LocsegError(f"{where}: expected an integer, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise LocsegError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise LocsegError(f"{where}: expected a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise LocsegError(f"{where}: expected text, got {value!r}")
        return str(value)
    return value


def config_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return _jsonable(dataclasses.asdict(cfg))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v
