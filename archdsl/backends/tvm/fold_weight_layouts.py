"""Fold transposes and reshapes of constants (the weights) with numpy, before legalization.

ConvertLayout leaves every weight behind a `permute_dims` (OIHW -> OHWI) and every
bias behind a `reshape` and a `permute_dims`. Relax's FoldConstant would fold them
too, but it compiles and runs a TIR kernel for each: 23 s of LLVM for ResNet-152's
150 convolutions. Here each is one numpy call on the bound constant.
"""
from __future__ import annotations

import numpy as np

from ._tvm import import_tvm


def fold_weight_layouts(mod):
    """`mod` with permute_dims/reshape of constants replaced by the constant they compute."""
    tvm = import_tvm()
    from tvm import relax

    folders = {
        "relax.permute_dims": lambda array, call: np.transpose(
            array, None if call.attrs.axes is None else [int(a) for a in call.attrs.axes]),
        "relax.reshape": lambda array, call: array.reshape([int(d) for d in call.args[1].values]),
    }

    @relax.expr_functor.mutator
    class FoldWeightLayouts(relax.PyExprMutator):
        def constant_of(self, expr):
            if isinstance(expr, relax.Var):
                expr = self.lookup_binding(expr)
            return expr if isinstance(expr, tvm.ir.expr.Constant) else None

        def visit_call_(self, call):
            call = super().visit_call_(call)
            fold = folders.get(getattr(call.op, "name", None))
            data = self.constant_of(call.args[0]) if fold is not None else None
            if data is None:
                return call
            return relax.const(np.ascontiguousarray(fold(data.value.numpy(), call)), str(data.value.dtype))

    folder = FoldWeightLayouts(mod)
    for global_var, func in mod.functions.items():
        if isinstance(func, relax.Function):
            folder.builder_.update_func(global_var, folder.visit_expr(func))
    return folder.builder_.get()
