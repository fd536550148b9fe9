"""Weight initialization schemes, written as the source of the model's `init_weights` method.

  kaiming  He et al. (2015), as ResNet and torchvision train: Kaiming normal
           (fan_out, relu) for convolutions, Kaiming normal (fan_in, relu) for fc
           layers followed by a relu, N(0, 0.01) for the other fc layers (the
           classifier, SE's excitation), zero biases; batch norms start as the identity.
  xavier   Glorot & Bengio (2010): Xavier uniform for conv and fc weights, zero biases.
  torch    PyTorch's defaults (no `init_weights`).
  auto     the spec's `train { init = … }`, else kaiming.

It is generated source rather than a function applied from outside so that the
standalone file initializes exactly as `to_torch()` does, draw for draw.
"""
from __future__ import annotations

from ...errors import ArchError
from ...ops import FC, ReLU
from .plan import Plan

SCHEMES = ("kaiming", "xavier", "torch")
_CONV_LIKE = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
_BATCHNORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")


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


def init_method(net, plan: Plan, scheme: str) -> list[str]:
    """The lines of `def init_weights(self)` (indented for a class body), or [] for `torch`."""
    if scheme == "torch":
        return []
    present = {step.module.cls for step in plan.modules}
    convs = [c for c in _CONV_LIKE if c in present]
    norms = [c for c in _BATCHNORMS if c in present]
    fcs = [s for s in plan.modules if isinstance(s.layer.op, FC)]
    before_relu = [s for s in fcs if _feeds_relu(net, s.layer.name)]
    others = [s for s in fcs if s not in before_relu]
    lines = ["def init_weights(self):"]
    if scheme == "kaiming":
        lines.append('    """He et al. (2015): Kaiming normal weights, zero biases; batch norms start as the identity."""')
        conv_init = 'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")'
    else:
        lines.append('    """Glorot & Bengio (2010): Xavier uniform weights, zero biases."""')
        conv_init = "nn.init.xavier_uniform_(m.weight)"
    if convs or norms:
        lines.append("    for m in self.modules():")
        keyword = "if"
        if convs:
            lines += [
                f"        {keyword} isinstance(m, {_tuple([f'nn.{c}' for c in convs]) if len(convs) > 1 else 'nn.' + convs[0]}):",
                f"            {conv_init}",
                "            if m.bias is not None:",
                "                nn.init.zeros_(m.bias)",
            ]
            keyword = "elif"
        if norms:
            lines += [
                f"        {keyword} isinstance(m, {_tuple([f'nn.{c}' for c in norms]) if len(norms) > 1 else 'nn.' + norms[0]}):",
                "            nn.init.ones_(m.weight)",
                "            nn.init.zeros_(m.bias)",
            ]
    groups = (
        [(before_relu, 'nn.init.kaiming_normal_(m.weight, nonlinearity="relu")', "  # followed by a relu"),
         (others, "nn.init.normal_(m.weight, 0.0, 0.01)", "")]
        if scheme == "kaiming"
        else [(fcs, "nn.init.xavier_uniform_(m.weight)", "")]
    )
    for group, weight_init, comment in groups:
        if not group:
            continue
        lines += [
            f"    for m in {_tuple([f'self.{s.attr}' for s in group])}:{comment}",
            f"        {weight_init}",
            "        if m.bias is not None:",
            "            nn.init.zeros_(m.bias)",
        ]
    return lines


def _feeds_relu(net, node: str) -> bool:
    consumers = [net.layer(n).op for n in net.graph.successors(node)]
    return bool(consumers) and all(isinstance(op, ReLU) for op in consumers)
