"""The train section and its command-line overrides → TrainConfig (no torch needed)."""
from __future__ import annotations

import re

import pytest

import archdsl
from archdsl.errors import ArchError
from archdsl.train.config import TrainConfig, override, overrides_from_pairs, resolve_config

SPEC = """network tiny
input 1x8x8
conv3-4 relu maxpool2 fc-10
train {
  dataset = digits
  optimizer = sgd(momentum=0.8, nesterov=true)
  lr = 0.02
  schedule = step(10, 0.5)
  augment = [crop(pad=2), flip]
  epochs = 7
  label_smoothing = 0.2
}
"""


def config_of(text: str, *pairs: str) -> TrainConfig:
    net = archdsl.load(text)
    return resolve_config(net.train_settings, overrides_from_pairs(list(pairs)))


def with_train(body: str) -> str:
    return f"input 1x8x8\nconv3-4 relu fc-10\ntrain {{\n{body}\n}}\n"


def test_no_train_section_gives_the_defaults():
    config = config_of("input 1x8x8\nconv3-4 fc-10\n")
    assert config == TrainConfig()
    assert config.dataset == "digits" and config.optimizer[0] == "sgd" and config.schedule[0] == "cosine"


def test_spec_settings_are_read():
    config = config_of(SPEC)
    assert config.optimizer == ("sgd", (("momentum", 0.8), ("nesterov", True)))
    assert config.lr == 0.02 and config.epochs == 7 and config.label_smoothing == 0.2
    assert config.schedule == ("step", (("every", 10), ("gamma", 0.5)))
    assert config.augment == (("crop", (("pad", 2),)), ("flip", ()))
    assert config.span("lr").line == 7


def test_overrides_win_over_the_spec_and_keep_their_own_span():
    config = config_of(SPEC, "lr=0.01", "optimizer=adamw(beta1=0.8)", "schedule=cosine", "batch-size=16")
    assert (config.lr, config.optimizer, config.schedule[0], config.batch_size) == (
        0.01, ("adamw", (("beta1", 0.8),)), "cosine", 16)
    assert config.span("lr").file == "command line"
    assert config.epochs == 7  # not overridden


def test_paths_are_taken_verbatim_from_the_command_line():
    net = archdsl.load(SPEC)
    config = resolve_config(net.train_settings, [override("dataset", "/data/my mnist"), override("freeze", "b1.conv2")])
    assert config.dataset == "/data/my mnist" and config.freeze == "b1.conv2"


def test_json_round_trip():
    config = config_of(SPEC, "num_classes=10", "init_from=none")
    assert TrainConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("body, line, fragment", [
    ("  lr = -0.1", 4, "'lr' must be a number > 0"),
    ("  epochs = 2.5", 4, "expects a whole number"),
    ("  optimizer = sgdd", 4, "did you mean 'sgd'"),
    ("  schedule = cosin", 4, "did you mean 'cosine'"),
    ("  optimizer = sgd(momentom=0.9)", 4, "did you mean 'momentum'"),
    ("  augment = [crop(pad=4), flp]", 4, "did you mean 'flip'"),
    ("  batch_size = 64\n  lrate = 0.1", 5, "unknown train setting 'lrate'"),
    ("  seed = 1\n  seed = 2", 5, "set twice"),
    ("  dataset = [digits]", 4, "quote paths"),
    ("  init = kaiming_normal", 4, "unknown init scheme"),
])
def test_bad_values_are_errors_at_the_spec_line(body, line, fragment):
    with pytest.raises(ArchError) as info:
        config_of(with_train(body))
    err = info.value
    assert fragment in err.message
    assert err.span is not None and err.span.line == line
    assert err.format().startswith(f"<string>:{line}:") or f":{line}:" in err.format().splitlines()[0]


def test_bad_override_points_at_the_command_line():
    with pytest.raises(ArchError) as info:
        config_of(SPEC, "optimizer=adamm")
    text = info.value.format()
    assert text.startswith("command line:1:") and "did you mean 'adam'" in text and "^" in text
    with pytest.raises(ArchError, match="key=value"):
        overrides_from_pairs(["lr"])


# ---- ranges: a value that cannot work is an error at its line, before anything trains ----------------------

OUT_OF_RANGE = [
    ("optimizer = sgd(momentum=-0.9)", "sgd: argument 'momentum' must be a number >= 0, got -0.9"),
    ("optimizer = sgd(momentum=0, nesterov=true)", "sgd: nesterov=true needs momentum > 0 and dampening = 0"),
    ("optimizer = sgd(momentum=0.9, nesterov=true, dampening=0.5)", "nesterov=true needs momentum > 0 and dampening = 0"),
    ("optimizer = sgd(nesterov=1)", "sgd: argument 'nesterov' expects true or false, got 1"),
    ("optimizer = adam(beta1=2)", "adam: argument 'beta1' must be a number in [0, 1), got 2"),
    ("optimizer = adamw(0.9, 1)", "adamw: argument 'beta2' must be a number in [0, 1), got 1"),
    ("optimizer = adam(eps=0)", "adam: argument 'eps' must be a number > 0, got 0"),
    ("optimizer = rmsprop(alpha=1.5)", "rmsprop: argument 'alpha' must be a number in [0, 1], got 1.5"),
    ("schedule = step(0, 0.1)", "step: argument 'every' must be a whole number >= 1, got 0"),
    ("schedule = step(2.5)", "step: argument 'every' expects a whole number >= 1, got 2.5"),
    ("schedule = step(10, 0)", "step: argument 'gamma' must be a number in (0, 1], got 0"),
    ("schedule = plateau(factor=2)", "plateau: argument 'factor' must be a number in (0, 1), got 2"),
    ("schedule = plateau(patience=-1)", "plateau: argument 'patience' must be a whole number >= 0, got -1"),
    ("schedule = cosine(min_lr=-1)", "cosine: argument 'min_lr' must be a number >= 0, got -1"),
    ("schedule = cosine(min_lr=1)", "cosine: min_lr 1 is above the learning rate 0.05"),
    ("seed = 4294967296", "train setting 'seed' must be a whole number in [0, 4294967295], got 4294967296"),
    ("seed = -1", "train setting 'seed' must be a whole number in [0, 4294967295], got -1"),
    ("augment = [crop(pad=100000)]", "crop: pad 100000 is larger than the input (8x8)"),
    ("augment = [crop(pad=-1)]", "crop: argument 'pad' must be a whole number >= 0, got -1"),
    ("augment = [flip(p=2)]", "flip: argument 'p' must be a number in [0, 1], got 2"),
    ("lr = 1e999", "train setting 'lr' expects a number > 0, got inf"),
    ("weight_decay = 1e999", "train setting 'weight_decay' expects a number >= 0, got inf"),
    ("aux_weight = -0.5", "train setting 'aux_weight' must be a number >= 0, got -0.5"),
    ("batch_size = 0", "train setting 'batch_size' must be a whole number >= 1, got 0"),
    ("epochs = 1e999", "train setting 'epochs' expects a whole number >= 1, got inf"),
    # finite, but not in the 32-bit floats training computes in (torch raised mid-step: exit 3)
    ("lr = 1e39", "train setting 'lr' expects a number > 0 within what training's 32-bit floats hold"),
    ("weight_decay = 1e300", "train setting 'weight_decay' expects a number >= 0 within what training's 32-bit"),
    ("augment = [resized_crop(max_ratio=1e308)]", "resized_crop: argument 'max_ratio' expects a number >= 1 within"),
    ("lr = 1e-320", "train setting 'lr' must be a number > 0, got 1e-320 (which is 0 in training's 32-bit floats)"),
    ("optimizer = adam(eps=1e-50)", "adam: argument 'eps' must be a number > 0, got 1e-50 (which is 0 in"),
]


@pytest.mark.parametrize("body, message", OUT_OF_RANGE)
def test_values_out_of_range_are_errors_at_the_spec_line(body, message):
    net = archdsl.load(with_train(("  lr = 0.05\n  " if not body.startswith("lr ") else "  epochs = 2\n  ") + body))
    with pytest.raises(ArchError) as info:
        resolve_config(net.train_settings, (), net.input_shape)
    assert message in info.value.message, info.value.message
    assert info.value.span is not None and info.value.span.line == 5, info.value.format()


@pytest.mark.parametrize("body, message", OUT_OF_RANGE)
def test_values_out_of_range_on_the_command_line(body, message):
    key, _, value = body.partition(" = ")
    net = archdsl.load(with_train("  lr = 0.05"))
    with pytest.raises(ArchError) as info:
        resolve_config(net.train_settings, overrides_from_pairs([f"{key}={value}"]), net.input_shape)
    assert message in info.value.message
    assert info.value.format().startswith("command line:1:")


def test_a_config_made_in_python_is_checked_too():
    from archdsl.train.config import check_config

    check_config(TrainConfig(), (1, 8, 8))
    for bad, message in [({"lr": float("inf")}, "'lr' expects a number > 0, got inf"),
                         ({"lr": float("nan")}, "'lr' expects a number > 0, got nan"),
                         ({"seed": 2**40}, "'seed' must be a whole number in [0, 4294967295]"),
                         ({"optimizer": ("adam", (("beta1", 2.0),))}, "adam: argument 'beta1' must be"),
                         ({"schedule": ("step", (("every", 0),))}, "step: argument 'every' must be"),
                         ({"augment": (("crop", (("pad", 9),)),)}, "crop: pad 9 is larger than the input (8x8)"),
                         ({"optimizer": ("lbfgs", ())}, "unknown optimizer 'lbfgs'")]:
        with pytest.raises(ArchError, match=re.escape(message)):
            check_config(TrainConfig(**bad), (1, 8, 8))


@pytest.mark.parametrize("value", [
    "0.1 } input 3x8x8 relu #",
    "0.1 } input 3x8x8 relu",
    "0.1 lr=0.2",
    "0.1 } network x",
    "0.1\ninput 3x8x8",
    "0.1 # a comment",
])
def test_a_set_value_is_one_value(value):
    with pytest.raises(ArchError) as info:
        overrides_from_pairs([f"lr={value}"])
    assert "--set lr=… takes one value" in info.value.message
    assert info.value.format().startswith("command line:1:")
    assert overrides_from_pairs(["lr=(0.1)"])[0].key == "lr"
