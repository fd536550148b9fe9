"""Run untuned CPU kernels on every core: the outer spatial loops of each block go parallel.

Legalized kernels are plain serial loops until MetaSchedule schedules them, so an
untuned build used one core. This is the default schedule of every kernel that a
database did not schedule: in each block, the loops of its leading spatial axes are
fused and marked parallel. Reductions stay whole inside one thread's iteration, so
every output is computed, and rounded, as in the serial kernel. A kernel this cannot
schedule (its loops do not normalize) is left serial.
"""
from __future__ import annotations

from ._tvm import import_tvm


def _parallelize_blocks(sch) -> bool:
    from tvm.s_tir.dlight.analysis import normalize_prim_func

    blocks = normalize_prim_func(sch)
    if blocks is None:
        return False
    changed = False
    for block in blocks:
        kinds = block.dom_kind()
        leading = len(kinds) - len(kinds.lstrip("S"))
        if leading == 0:
            continue
        loops = [iterator.loop_rv for iterator in block.iters[:leading]]
        sch.parallel(sch.fuse(*loops) if leading > 1 else loops[0])
        changed = True
    return changed


def parallelize_untuned(mod):
    """`mod` with every unscheduled kernel's outer spatial loops parallel."""
    import_tvm()
    from tvm import s_tir, tirx

    for gvar, func in list(mod.functions.items()):
        if not isinstance(func, tirx.PrimFunc) or (func.attrs is not None and "tirx.is_scheduled" in func.attrs):
            continue
        sch = s_tir.Schedule(func)
        try:
            changed = _parallelize_blocks(sch)
        except s_tir.ScheduleError:  # e.g. loops shared by several blocks: keep the serial kernel
            continue
        if changed:
            mod[gvar] = sch.mod["main"].with_attr("tirx.is_scheduled", True)
    return mod
