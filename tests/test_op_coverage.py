"""Every layer type reaches everywhere a layer type must be: this file fails until it does.

A layer type is one class in archdsl/ops (syntax, shape rule, weights, MACs, traits);
beside it, each backend keeps one small emitter per op type, and the docs one row.
These tests take the list of ops from the registry itself, so a new op that forgets
its PyTorch emitter, its TVM emitter, its docs row, or declares weights that differ
from the tensors its PyTorch module holds, fails here by name.
"""
from __future__ import annotations

import dataclasses
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl import formula, ops
from archdsl.composites import COMPOSITES
from archdsl.ops import REGISTRY, all_ops

torch = pytest.importorskip("torch")

from archdsl.backends.torch.lower import find_emitter as torch_emitter  # noqa: E402
from archdsl.backends.tvm.lower import find_emitter as tvm_emitter  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "language.md"
SPEC_OPS = sorted({cls for cls in REGISTRY.values()}, key=lambda c: c.family)
# Spec fragments that make archdsl build the ops a spec cannot write itself: the composites' and
# split's (its parts), each form of se.
COMPOSITE_EXAMPLES = {"residual": "residual< conv3-8 >", "inception": "inception< conv1-4 | conv3-4 >", "se": "se<4>"}
SYNTAX_EXAMPLES = {
    **COMPOSITE_EXAMPLES,
    "se, conv form": "se<squeeze=3, act=silu, gate=hardsigmoid, form=conv>",
    "split": "split(2, 6) -> a, b @b conv1-6 -> c @a concat(@c)",
}


def example_net(fragment: str) -> archdsl.Network:
    return archdsl.load(f"network example\ninput 8x16x16\n{fragment}\n")


def test_every_composite_has_an_example_here():
    assert set(COMPOSITE_EXAMPLES) == {c.keyword for c in COMPOSITES.values()}


def test_every_op_is_built_by_some_example():
    built = {type(layer.op) for fragment in [c.example for c in SPEC_OPS] + list(SYNTAX_EXAMPLES.values())
             for layer in example_net(fragment).layers}
    missing = [cls.__name__ for cls in all_ops() if cls not in built]
    assert not missing, f"no example builds {missing}: give the op an `example`"


@pytest.mark.parametrize("cls", SPEC_OPS, ids=lambda c: c.family)
def test_every_spec_op_declares_an_example_that_uses_it(cls):
    assert cls.example, f"{cls.__name__} has no `example`"
    assert any(isinstance(layer.op, cls) for layer in example_net(cls.example).layers)


@pytest.mark.parametrize("cls", [c for c in all_ops() if c.max_inputs != 0], ids=lambda c: c.__name__)
def test_every_op_has_a_pytorch_and_a_tvm_emitter(cls):
    """(The network's input, an op with no inputs, is the argument of `forward`, not a layer to emit.)"""
    assert torch_emitter(cls), f"{cls.__name__}: add an emitter to archdsl/backends/torch/lower.py"
    assert tvm_emitter(cls), f"{cls.__name__}: add an emitter to archdsl/backends/tvm/lower.py"


@pytest.mark.parametrize("fragment", [c.example for c in SPEC_OPS] + list(SYNTAX_EXAMPLES.values()))
def test_declared_weights_are_the_pytorch_modules_tensors(fragment):
    """The layout the TVM backend reads state_dicts by (`op.weights`) is the one PyTorch holds,
    tensor by tensor, and the parameter count derived from it is PyTorch's."""
    net = example_net(fragment)
    model = net.to_torch()
    state = model.state_dict()
    seen = set()
    for layer in net.layers[1:]:
        inputs = tuple(net.layer(i).shape for i in layer.inputs)
        declared = {f"{net.module_path(layer.name)}.{name}": w for name, w in layer.op.weights(inputs).items()}
        for key, weight in declared.items():
            assert key in state, f"{layer.name} ({layer.token}) declares {key}, which PyTorch's module lacks"
            assert tuple(state[key].shape) == weight.shape, (key, tuple(state[key].shape), weight.shape)
        seen |= declared.keys()
        trainable = sum(p.numel() for k, p in model.named_parameters() if k in declared)
        assert trainable == layer.params, (layer.name, trainable, layer.params)
    assert set(state) == seen, f"PyTorch holds tensors no op declares: {sorted(set(state) - seen)}"


def _token_table() -> list[tuple[str, str]]:
    """(token cell, options cell) of each row of language.md's token table (§2)."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## 2. Layer tokens at a glance", 1)[1].split("\n## ", 1)[0]
    table = section.split("| Token | Layer | Options (default) |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|") for line in table.strip().splitlines()[1:]]
    return [(cells[1], cells[3]) for cells in rows]


@pytest.mark.parametrize("cls", SPEC_OPS, ids=lambda c: c.family)
def test_every_op_has_a_row_in_the_language_reference(cls):
    names = {cls.family, *cls.aliases}
    rows = [(token, options) for token, options in _token_table()
            if any(re.search(rf"`{re.escape(name)}(?![a-z_])", token) for name in names)]
    assert rows, f"docs/language.md's token table has no row for `{cls.family}`"
    options = " ".join(o for _, o in rows)
    for option in cls.options:
        assert f"`{option.name}`" in options, f"the `{cls.family}` row does not list its option `{option.name}`"


def test_traits_replace_lists_of_op_classes():
    # The facts the backends used to keep as lists, now asked of the ops themselves.
    assert ops.BatchNorm.has(ops.Trait.CANCELS_BIAS) and not ops.LRN.has(ops.Trait.CANCELS_BIAS)
    assert ops.Conv.has(ops.Trait.OUTPUT_OVERWRITABLE) and not ops.Sigmoid.has(ops.Trait.OUTPUT_OVERWRITABLE)
    assert all(cls.has(ops.Trait.KEEPS_CHANNELS) for cls in (ops.ReLU, ops.Softmax, ops.Dropout, ops.GlobalAvgPool))


class NumpyPrimitives:
    """The formula's primitives in numpy (float64): the reference the activations are held to."""

    const = staticmethod(float)
    add, sub, mul, div, pow = map(staticmethod, (np.add, np.subtract, np.multiply, np.divide, np.power))
    gt, lt, ge, le = map(staticmethod, (np.greater, np.less, np.greater_equal, np.less_equal))
    neg, exp, log, tanh, sqrt, abs = map(staticmethod, (np.negative, np.exp, np.log, np.tanh, np.sqrt, np.abs))
    where, clip = staticmethod(np.where), staticmethod(np.clip)
    sigmoid = staticmethod(lambda v: 1 / (1 + np.exp(-v)))
    erf = staticmethod(np.vectorize(math.erf))
    softplus = staticmethod(lambda v: np.where(v > 20, v, np.log1p(np.exp(np.minimum(v, 20)))))


ACTIVATIONS = [c for c in SPEC_OPS if issubclass(c, ops.Activation)]


@pytest.mark.parametrize("cls", ACTIVATIONS, ids=lambda c: c.family)
def test_an_activations_formula_is_what_its_pytorch_module_computes(cls):
    """The formula is what TVM computes (and PyTorch where torch.nn has no module): hold it to PyTorch."""
    net = example_net(cls.example)
    layer = next(layer for layer in net.layers if isinstance(layer.op, cls))
    x = np.linspace(-8, 8, 8 * 16 * 16).reshape(1, 8, 16, 16).astype(np.float32)
    fields = {f.name: getattr(layer.op, f.name) for f in dataclasses.fields(layer.op)}
    expected = formula.evaluate(formula.parse(cls.formula), x.astype(np.float64), fields, NumpyPrimitives())
    model = net.to_torch().eval()
    with torch.no_grad():
        got = model.get_submodule(net.module_path(layer.name))(torch.from_numpy(x)) if cls.torch_module else None
    if got is not None:
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.fixture
def one_new_activation():
    """An activation added the way docs/ir.md says: one class (its docs row aside). torch.nn
    has no module for it, so PyTorch writes its formula out; TVM builds it from the formula too."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class SquarePlus(ops.Activation):
        family = "squareplus"
        example = "squareplus"
        formula = "0.5 * (x + sqrt(x * x + b))"
        b: float = 4.0

    ops.register(SquarePlus)
    yield SquarePlus
    del ops.REGISTRY["squareplus"]


def test_a_new_activation_is_one_class(one_new_activation):
    net = example_net("conv3-4 squareplus")
    source = net.to_torch().archdsl_source
    assert "torch.sqrt(" in source  # written out in forward: torch.nn has no such module
    x = np.linspace(-5, 5, 8 * 16 * 16, dtype=np.float32).reshape(1, 8, 16, 16)
    model = net.to_torch().eval()
    conv = model.get_submodule(net.module_path("conv1"))
    with torch.no_grad():
        before = conv(torch.from_numpy(x)).numpy()
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, 0.5 * (before + np.sqrt(before * before + 4.0)), rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "untuned": a tiny network, compiled only to compare numbers
        tvm_out = net.to_tvm(model.state_dict())(x)
    np.testing.assert_allclose(tvm_out, got, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", all_ops(), ids=lambda c: c.__name__)
def test_every_op_has_a_colour_by_its_kind(cls):
    """Diagrams colour a layer by its kind: a new op needs no edit of archdsl/render."""
    from archdsl.render.style import KIND_COLOURS

    assert cls.kind in KIND_COLOURS, f"{cls.__name__}: kind {cls.kind} has no colour in render/style.py"


@pytest.mark.parametrize("fragment", [c.example for c in SPEC_OPS] + list(SYNTAX_EXAMPLES.values()))
def test_the_generated_file_imports_only_torch(fragment):
    """Ops torch.nn lacks are defined in the generated file itself, which still needs only torch."""
    import ast as python_ast

    source = example_net(fragment).to_torch().archdsl_source
    imports = {python_ast.unparse(node) for node in python_ast.walk(python_ast.parse(source))
               if isinstance(node, (python_ast.Import, python_ast.ImportFrom))}
    assert imports == {"import torch", "from torch import nn"}


def declared_weights(net, layer) -> dict:
    return layer.op.weights(tuple(net.layer(i).shape for i in layer.inputs))


def constant_weights(net):
    return [(layer, name, weight) for layer in net.layers[1:] for name, weight in declared_weights(net, layer).items()
            if weight.role is ops.Role.CONSTANT]


CONSTANT_EXAMPLES = [c.example for c in SPEC_OPS if constant_weights(example_net(c.example))]


@pytest.mark.parametrize("scheme", ["kaiming", "xavier", "torch"])
def test_constant_tensors_start_at_their_fill_in_every_scheme(scheme):
    """A Role.CONSTANT tensor (PReLU's slope, ConvNeXt's layer scale) is set by its module's
    constructor and left alone by init_weights."""
    assert CONSTANT_EXAMPLES  # prelu, layerscale
    for fragment in CONSTANT_EXAMPLES:
        net = example_net(fragment)
        state = net.to_torch(init=scheme).state_dict()
        for layer, name, weight in constant_weights(net):
            value = state[f"{net.module_path(layer.name)}.{name}"]
            assert torch.all(value == torch.tensor(weight.fill, dtype=value.dtype)), (fragment, name)
