"""An ONNX file read for importing: its nodes in order, every tensor's shape, its constants.

The batch dimension is fixed to 1 before onnx's shape inference (with data propagation, so
that a Reshape whose target is computed from `Shape` still gets its output shape), so that
every shape is static; archdsl's shapes are the inferred ones without the batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArchError
from ..memory import memory_ceiling

# What reading a graph's shapes (onnx's inference, folding its constants) may take beyond the
# model's own size: shape tensors are a few numbers, so this is only ever reached by a graph
# that computes huge constants from small ones.
READING_MEMORY = 2 << 30


def need_onnx():
    try:
        import numpy  # noqa: F401
        import onnx
    except ImportError as exc:
        raise ArchError(f"importing ONNX needs the onnx package: pip install 'archdsl[torch]' ({exc})") from None
    return onnx


@dataclass
class OnnxModel:
    path: Path | None
    graph_name: str
    nodes: list  # onnx.NodeProto, in the file's (topological) order
    shapes: dict[str, tuple[int, ...]]  # tensor → shape, batch included
    constants: dict[str, object]  # tensor → numpy array: initialisers, Constant nodes and their Identity copies
    inputs: list[str]  # the graph's inputs that are not initialisers
    outputs: list[str]
    opset: int
    consumers: dict[str, list] = field(default_factory=dict)  # tensor → the nodes that read it

    def shape(self, tensor: str) -> tuple[int, ...] | None:
        return self.shapes.get(tensor)


def read(source) -> OnnxModel:
    """An ONNX file (path or ModelProto), checked, its batch fixed to 1 and its shapes inferred."""
    onnx = need_onnx()
    from onnx import numpy_helper, shape_inference

    path = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ArchError(f"no ONNX file at '{path}'")
        if path.stat().st_size == 0:
            raise ArchError(f"'{path}' is empty; expected an ONNX model")
        try:
            proto = onnx.load(str(path))
        except Exception as exc:  # not protobuf, truncated
            raise ArchError(f"'{path}' is not an ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    else:
        proto = source
    graph = proto.graph
    if not graph.node and not graph.input and not graph.output:
        raise ArchError(f"'{path or graph.name}' holds no graph (no nodes, inputs or outputs); expected an ONNX model")
    initialisers = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initialisers]
    if len(inputs) != 1:
        listed = f": {', '.join(inputs)}" if inputs else ""
        raise ArchError(f"archdsl imports networks with one input; this graph has {len(inputs)}{listed}")
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and value.name not in initialisers:
            dims[0].Clear()
            dims[0].dim_value = 1
    graph.ClearField("value_info")
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    constants = {t.name: _initialiser(t, numpy_helper) for t in graph.initializer}
    for t in graph.initializer:  # shape inference reads the dims only: do not make it copy the weights
        if t.name in constants and constants[t.name].size > 64:
            for data in ("raw_data", "float_data", "double_data", "int32_data", "int64_data"):
                t.ClearField(data)
            t.data_location = onnx.TensorProto.DEFAULT
    try:
        with memory_ceiling(READING_MEMORY + sum(v.nbytes for v in constants.values())):
            inferred = _infer(proto, shape_inference)
            shapes = _shapes(inferred)
            if any(o not in shapes for n in inferred.graph.node for o in n.output if o):
                # Shapes computed at run time (torch's traced `view(…, x.size(1) // g, …)`): with the batch fixed,
                # every one of them is a constant; compute them and infer again.
                if _fold_shape_computations(proto, shapes, constants):
                    inferred = _infer(proto, shape_inference)
    except MemoryError:
        raise ArchError(f"reading this graph's shapes needs more than {READING_MEMORY >> 30} GiB beyond the model's"
                        " weights: the graph computes huge constants from small ones (a Range, ConstantOfShape or"
                        " Expand of billions of values?)") from None
    shapes = _shapes(inferred)
    for t in graph.initializer:
        shapes[t.name] = tuple(t.dims)
    nodes = list(inferred.graph.node)
    for node in nodes:
        if node.op_type == "Constant" and node.output:
            value = _constant_value(node, numpy_helper)
            if value is not None:
                constants[node.output[0]] = value
                shapes[node.output[0]] = tuple(value.shape)
        elif node.op_type == "Identity" and node.input and node.input[0] in constants:
            constants[node.output[0]] = constants[node.input[0]]
            shapes[node.output[0]] = tuple(constants[node.input[0]].shape)
    consumers: dict[str, list] = {}
    for node in nodes:
        for tensor in node.input:
            if tensor:
                consumers.setdefault(tensor, []).append(node)
    return OnnxModel(path, graph.name or (path.stem if path else "imported"), nodes, shapes, constants, inputs,
                     [o.name for o in graph.output], opset, consumers)


def _initialiser(tensor, numpy_helper):
    """An initialiser's values, or an ArchError naming it when its data does not fill its dims."""
    try:
        return numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001 - onnx raises ValueError, TypeError or its own for damaged tensors
        dims = "×".join(map(str, tensor.dims)) or "a scalar"
        raise ArchError(f"the ONNX initialiser '{tensor.name}' cannot be read: its dims are {dims}, but its data"
                        f" does not fill them ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def _infer(proto, shape_inference):
    try:
        return shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    except MemoryError:
        raise  # past the ceiling `read` runs this under: said there
    except Exception as exc:
        raise ArchError(f"onnx's shape inference fails on this graph: {type(exc).__name__}: {exc}") from None


def _shapes(inferred) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
        if all(d >= 0 for d in dims):
            shapes[value.name] = dims
    return shapes


def _fold_shape_computations(proto, shapes: dict, constants: dict) -> bool:
    """Evaluate the nodes that compute shapes (Shape of a tensor whose shape is known, then anything on
    constants) with onnx's reference implementation, and give their consumers the values as
    initialisers. Whether anything was folded."""
    import numpy as np
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    values = dict(constants)
    for node in proto.graph.node:
        if node.op_type == "Constant":
            value = _constant_value(node, numpy_helper)
            if value is not None:
                values[node.output[0]] = value
    folded = {}
    for node in proto.graph.node:
        inputs = [t for t in node.input if t]
        try:
            if node.op_type == "Shape" and inputs and inputs[0] in shapes:
                attrs = {a.name: a.i for a in node.attribute}
                dims = shapes[inputs[0]]
                result = [np.array(dims[attrs.get("start", 0): attrs.get("end", len(dims))], dtype=np.int64)]
            elif inputs and all(t in values for t in inputs) and node.op_type not in ("Constant",):
                result = ReferenceEvaluator(node).run(None, {t: values[t] for t in inputs})
            else:
                continue
        except Exception:  # not computable here: left to the converters, which say what they miss
            continue
        for name, value in zip(node.output, result):
            values[name] = np.asarray(value)
            folded[name] = np.asarray(value)
    if not folded:
        return False
    for node in proto.graph.node:
        for i, tensor in enumerate(node.input):
            if tensor in folded and node.op_type not in ("Shape",):
                node.input[i] = tensor + "#folded"
    proto.graph.initializer.extend(numpy_helper.from_array(v, name + "#folded") for name, v in folded.items())
    constants.update({name + "#folded": v for name, v in folded.items()})
    return True


def _constant_value(node, numpy_helper):
    import numpy as np

    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(list(attr.floats), dtype=np.float32)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), dtype=np.int64)
    return None


def attributes(node) -> dict:
    """A node's attributes as Python values."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def module_hint(node) -> tuple[str | None, tuple[str, ...]]:
    """Where PyTorch's exporters say a node came from: (module path, class names from the root).

    The dynamo exporter keeps both in the node's metadata; the TorchScript exporter names
    nodes after their module path (`/layer1/layer1.0/conv1/Conv`)."""
    meta = {p.key: p.value for p in node.metadata_props}
    scopes = meta.get("pkg.torch.onnx.name_scopes")
    classes = meta.get("pkg.torch.onnx.class_hierarchy")
    if scopes:
        import ast

        try:
            scope_list = ast.literal_eval(scopes)
            class_list = tuple(ast.literal_eval(classes)) if classes else ()
        except (ValueError, SyntaxError):
            return None, ()
        path = scope_list[-2] if len(scope_list) >= 2 else None
        return (path or None), class_list[:-1]
    if node.name.startswith("/"):
        # TorchScript's scopes name each module within its parent, an indexed child as `features.2`:
        # /features/features.2/conv/conv.0/Conv is the module features.2.conv.0
        path: list[str] = []
        for part in node.name.strip("/").split("/")[:-1]:
            if path and part.startswith(path[-1] + "."):
                path[-1] = part
            else:
                path.append(part)
        return (".".join(path) or None), ()
    return None, ()
