"""The train section and its command-line overrides → TrainConfig (no torch needed)."""
from __future__ import annotations

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
    ("  lr = -0.1", 4, "'lr' must be > 0"),
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
