"""The `train` section's settings as an editor shows them, read from `archdsl.train.config`
(which imports no torch): each key, its default, and the values it takes."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from .. import ast


@dataclass(frozen=True)
class Choice:
    """A value a setting takes: a word, or a call with its arguments (`sgd(momentum, nesterov, dampening)`)."""

    name: str
    arguments: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.name}({', '.join(self.arguments)})" if self.arguments else self.name


@dataclass(frozen=True)
class SettingInfo:
    key: str
    default: str
    choices: tuple[Choice, ...] = ()
    is_list: bool = False  # `augment = [crop(pad=4), flip]`


def _calls(table) -> tuple[Choice, ...]:
    return tuple(Choice(name, tuple(arguments)) for name, arguments in table.items())


@functools.lru_cache(maxsize=1)
def settings() -> dict[str, SettingInfo]:
    """Every key `archdsl train` reads, in its order, with its default as the spec would write it."""
    from ..train import config

    defaults = config.TrainConfig().to_json()
    choices = {
        "dataset": (Choice("digits"),),
        "normalize": tuple(Choice(n) for n in config.NORMALIZATIONS),
        "init": tuple(Choice(n) for n in config.INIT_SCHEMES),
        "optimizer": _calls(config.OPTIMIZERS),
        "schedule": _calls(config.SCHEDULES) + tuple(Choice(alias) for alias in config.SCHEDULE_ALIASES),
        "augment": _calls(config.AUGMENTATIONS),
    }
    fields = {f.name for f in dataclasses.fields(config.TrainConfig)}
    return {
        key: SettingInfo(key, _written(defaults.get(key)) if key in fields else "", choices.get(key, ()),
                         is_list=key == "augment")
        for key in config.READERS
    }


def aliases() -> dict[str, str]:
    from ..train import config

    return dict(config.ALIASES)


def canonical(key: str) -> str:
    key = key.strip().replace("-", "_").lower()
    return aliases().get(key, key)


def _written(value) -> str:
    """A default as a spec writes it: `sgd(momentum=0.9, nesterov=true)`, `[crop(pad=2)]`, `none`."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        args = {k: v for k, v in value.items() if k != "name"}
        inner = ", ".join(f"{k}={_written(v)}" for k, v in args.items())
        return f"{value['name']}({inner})" if inner else value["name"]
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_written(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def setting_text(setting: ast.Setting) -> str:
    key = canonical(setting.key)
    info = settings().get(key)
    if info is None:
        return f"**{setting.key}**: not a train setting; known: {', '.join(settings())}"
    alias = f" (`{setting.key}` is an alias)" if key != setting.key else ""
    lines = [f"**train setting `{key}`**{alias}", f"default: `{info.default}`"]
    if info.choices:
        lines.append("values: " + ", ".join(f"`{c.text}`" for c in info.choices))
    return "\n\n".join(lines)
