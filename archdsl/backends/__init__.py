"""Backends: lower a checked `Network` to something that runs.

    archdsl.backends.torch   to_torch(net) -> nn.Module; generate_source(net) -> a standalone .py;
                             export_onnx(net, path)
    archdsl.backends.tvm     compile_spec(net, out_dir, ...) -> a TVM build

Each backend imports its framework itself, when first used, so that loading and
checking a spec (`archdsl check`) never imports torch or tvm.
"""
