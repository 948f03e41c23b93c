"""Typed configs to and from plain JSON-able dicts, for checkpoints and reports.

`to_dict(cfg)` turns a (nested) frozen dataclass into dicts, lists, numbers, strings and None (enums by value,
tuples as lists). `from_dict(cls, data, where)` rebuilds it and refuses unknown or ill-typed fields with a
`ConfigError` naming `where`, the field and the value; the dataclass's own `__post_init__` checks still run.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any

from fuyao.sim.config import ConfigError


def to_dict(cfg: Any) -> Any:
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, enum.Enum):
        return cfg.value
    if isinstance(cfg, (tuple, list)):
        return [to_dict(x) for x in cfg]
    if isinstance(cfg, dict):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if hasattr(cfg, "__fspath__"):
        return str(cfg)
    return cfg


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: got {value!r}; allowed: a mapping of {tp.__name__} fields")
        return from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: got {value!r}; allowed: a list")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], x, where) for x in value)
        if len(args) != len(value):
            raise ConfigError(f"{where}: got {value!r}; allowed: a list of {len(args)} items")
        return tuple(_convert(a, x, where) for a, x in zip(args, value))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise ConfigError(f"{where}: got {value!r}; allowed: {allowed}") from None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: got {value!r}; allowed: a number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: got {value!r}; allowed: an integer")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: got {value!r}; allowed: true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: got {value!r}; allowed: a string")
        return value
    if isinstance(tp, type):
        return tp(value)
    return value


def from_dict(cls: type, data: dict, where: str = "") -> Any:
    """Rebuild dataclass `cls` from `to_dict` output; `where` prefixes error messages (a file name)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    prefix = f"{where}: " if where and ":" not in where else ""
    if unknown:
        raise ConfigError(f"{prefix}{cls.__name__}: unknown field(s) {unknown}; allowed: {sorted(names)}")
    kwargs = {}
    for name in names & set(data):
        kwargs[name] = _convert(hints[name], data[name], f"{where}{'.' if where else ''}{cls.__name__}.{name}")
    return cls(**kwargs)
