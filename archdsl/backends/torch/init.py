"""Weight initialization schemes, written as the source of the model's `init_weights` method.

  kaiming  He et al. (2015), as ResNet and torchvision train: Kaiming normal
           (fan_out, relu) for convolutions, Kaiming normal (fan_in, relu) for fc
           layers followed by a relu, N(0, 0.01) for the other fc layers (the
           classifier, SE's excitation), zero biases; batch norms start as the identity.
  xavier   Glorot & Bengio (2010): Xavier uniform for conv and fc weights, zero biases.
  torch    PyTorch's defaults (no `init_weights`).
  auto     the spec's `train { init = … }`, else kaiming.

It is generated source rather than a function applied from outside so that the
standalone file initializes exactly as `to_torch()` does, draw for draw. What each
tensor gets follows its `Role`, which the op declares with its weights; a
`Role.CONSTANT` tensor is set by its module's constructor, in every scheme.
"""
from __future__ import annotations

from ...errors import ArchError
from ...ops import ReLU, Role
from .plan import Plan, attribute

SCHEMES = ("kaiming", "xavier", "torch")

# scheme → role → the init call for tensor `t` of module `m` (DENSE depends on what follows it).
_INITS = {
    "kaiming": {
        Role.KERNEL: 'nn.init.kaiming_normal_(m.{t}, mode="fan_out", nonlinearity="relu")',
        Role.TRANSPOSED_KERNEL: 'nn.init.kaiming_normal_(m.{t}, mode="fan_out", nonlinearity="relu")',
        Role.SCALE: "nn.init.ones_(m.{t})",
        Role.SHIFT: "nn.init.zeros_(m.{t})",
    },
    "xavier": {
        Role.KERNEL: "nn.init.xavier_uniform_(m.{t})",
        Role.TRANSPOSED_KERNEL: "nn.init.xavier_uniform_(m.{t})",
        Role.DENSE: "nn.init.xavier_uniform_(m.{t})",
        Role.SCALE: "nn.init.ones_(m.{t})",
        Role.SHIFT: "nn.init.zeros_(m.{t})",
    },
}
_DENSE_BEFORE_RELU = ('nn.init.kaiming_normal_(m.{t}, nonlinearity="relu")', "  # followed by a relu")
_DENSE_OTHERWISE = ("nn.init.normal_(m.{t}, 0.0, 0.01)", "")
_DOCS = {
    "kaiming": "He et al. (2015): Kaiming normal weights, zero biases; batch norms start as the identity.",
    "xavier": "Glorot & Bengio (2010): Xavier uniform weights, zero biases.",
}


def resolve_scheme(net, init: str) -> str:
    if init == "auto":
        init = "kaiming"
        for setting in net.train_settings:
            if setting.key == "init":
                value = setting.value
                init = getattr(value, "name", None) or getattr(value, "value", None) or str(value)
                init = str(init).strip('"')
    if init not in SCHEMES:
        raise ArchError(f"unknown init scheme '{init}'; expected one of {', '.join(SCHEMES)} (or auto)")
    return init


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _recipe(net, layer, scheme: str) -> tuple[tuple[tuple[str, str], ...], str, bool]:
    """(tensor, init call) for each of a layer's weights, a comment, and whether it has a bias to zero."""
    weights = layer.op.weights(tuple(net.layer(i).shape for i in layer.inputs))
    calls, comment, has_bias = [], "", False
    for name, weight in weights.items():
        if weight.role is Role.BIAS:
            has_bias = True
        elif weight.role is Role.DENSE and scheme == "kaiming":
            template, comment = _DENSE_BEFORE_RELU if _feeds_relu(net, layer.name) else _DENSE_OTHERWISE
            calls.append((name, template.format(t=name)))
        elif weight.trainable and weight.role in _INITS[scheme]:
            calls.append((name, _INITS[scheme][weight.role].format(t=name)))
    return tuple(calls), comment, has_bias


def _body(calls, has_bias: bool, indent: str) -> list[str]:
    lines = [indent + call for _, call in calls]
    if has_bias:
        lines += [f"{indent}if m.bias is not None:", f"{indent}    nn.init.zeros_(m.bias)"]
    return lines


def init_method(net, plan: Plan, scheme: str) -> list[str]:
    """The lines of `def init_weights(self)` (indented for a class body), or [] for `torch`.

    Modules of one class that all start alike are set in one `isinstance` branch, as
    torchvision writes it; the others (fc layers, whose start depends on what follows
    them) are listed by name.
    """
    if scheme == "torch":
        return []
    recipes: dict[str, dict[tuple, list[str]]] = {}  # module class (as the file names it) → recipe → module paths
    biases: dict[tuple, bool] = {}
    for layer, path, module in plan.layer_modules:
        calls, comment, has_bias = _recipe(net, layer, scheme)
        if calls or has_bias:
            key = (calls, comment)
            recipes.setdefault(module.qualname, {}).setdefault(key, []).append(path)
            biases[key] = biases.get(key, False) or has_bias
    lines = ["def init_weights(self):", f'    """{_DOCS[scheme]}"""']
    by_class = [(cls, next(iter(r))) for cls, r in recipes.items() if len(r) == 1 and not next(iter(r))[1]]
    if by_class:
        lines.append("    for m in self.modules():")
        merged: dict[tuple, list[str]] = {}  # classes that start alike share one branch: (nn.Conv2d, nn.Conv1d)
        for cls, key in by_class:
            merged.setdefault(key, []).append(cls)
        for i, (key, classes) in enumerate(merged.items()):
            test = classes[0] if len(classes) == 1 else _tuple(classes)
            lines.append(f"        {'if' if i == 0 else 'elif'} isinstance(m, {test}):")
            lines += _body(key[0], biases[key], " " * 12)
    listed = {cls for cls, _ in by_class}
    for cls, by_recipe in recipes.items():
        if cls in listed:
            continue
        for key, paths in by_recipe.items():
            lines.append(f"    for m in {_tuple([f'self.{attribute(p)}' for p in paths])}:{key[1]}")
            lines += _body(key[0], biases[key], " " * 8)
    return lines


def _feeds_relu(net, node: str) -> bool:
    consumers = [net.layer(n).op for n in net.graph.successors(node)]
    return bool(consumers) and all(isinstance(op, ReLU) for op in consumers)
