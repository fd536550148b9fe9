"""A state_dict from elsewhere (torchvision, timm, a plain {name: tensor}) renamed to a spec's keys
by structure (`archdsl.by_structure`), for `train --init-from`, `compile --checkpoint` and `evaluate`.

A file whose keys are mostly the model's own is archdsl's and is read by name, as before; any
other is mapped by structure. What does not fit is a table (their name, their shape, the spec
layer it would go to, what differs) in an ArchError, unless `strict` is false, when what fits
is loaded and the rest keeps its fresh weights (a new head for `--num-classes`).
"""
from __future__ import annotations

from ...by_structure import StructureMap, map_by_structure
from ...errors import ArchError


def is_foreign(model_keys, state: dict, archdsl: bool = False) -> bool:
    """Whether `state` must be mapped by structure: its keys are not exactly the model's
    (`model_keys`: the model's state_dict keys, or `by_structure.state_keys(net)`). A checkpoint
    archdsl wrote (`archdsl`) for another spec is read by name where most of the model's names are
    in it, as transfer between archdsl specs always was."""
    if not state:
        return False
    model_keys = set(model_keys)
    if set(state) == model_keys:
        return False
    return not (archdsl and sum(key in state for key in model_keys) * 2 >= len(model_keys))


def load_into(model, net, state: dict, *, strict: bool = True, what: str = "the checkpoint") -> StructureMap | None:
    """Load `state` into `model` (`net.to_torch()`): by name if it is archdsl's, else by structure;
    the structure map when it was used."""
    from .checkpoint import load_weights

    if not is_foreign(model.state_dict(), state):
        load_weights(model, state, net.name)
        return None
    state, mapping = adopt(net, state, strict=strict, what=what)
    if strict:
        load_weights(model, state, net.name)
    else:
        model.load_state_dict(state, strict=False)
    return mapping


def adopt(net, state: dict, *, strict: bool = True, fresh=(), what: str = "the checkpoint") -> tuple[dict, StructureMap]:
    """`state` under the spec's keys, mapped by structure; `fresh` are layers expected not to fit
    (heads replaced for another class count). Raises ArchError with the mismatch table when anything
    else does not fit and `strict`."""
    mapping = map_by_structure(net, [(key, tuple(value.shape)) for key, value in state.items()])
    problems = tuple(row for row in mapping.rows if row.layer not in set(fresh))
    if problems and strict:
        raise ArchError(
            f"{what} does not fit spec '{net.name}' by structure: {len(mapping.layers)} of its modules map onto the"
            f" spec's layers, {len(problems)} do not:\n{mapping.table(problems)}\n"
            "Use the spec the weights were made for, or --strict false to load what fits and keep fresh weights"
            " for the rest"
        )
    return {mapping.keys[key]: value for key, value in state.items() if key in mapping.keys}, mapping


def describe(mapping: StructureMap, fresh=()) -> str:
    """One line for the log: how many layers were mapped, and what was left fresh."""
    left = [row.layer for row in mapping.rows if row.layer]
    line = f"mapped by structure onto {len(mapping.layers)} layers"
    if left:
        line += f"; fresh: {', '.join(left)}"
    unused = [row.their for row in mapping.rows if row.layer is None and row.their]
    if unused:
        line += f"; unused from the file: {', '.join(unused)}"
    return line
