"""`archdsl compile SPEC --target tvm`: lower, build (with a tuning database if given), export.

    archdsl compile SPEC --target tvm [--checkpoint CKPT] [--device cpu|cuda] [--batch N] [--db DIR] -o OUT
"""
from __future__ import annotations

import time

from ...errors import ArchError
from .artefact import check_out_dir
from .build import build, export
from .database import open_database_dir
from .load import load_network, load_state_dict
from .lower import lower
from .target import is_gpu, resolve_target

UNTUNED_WARNING = (
    "warning: this TVM build is untuned: its kernels are plain loops, parallel but neither tiled nor vectorized. "
    "Measured on 2 cores, batch 1: ResNet-18 20-30x slower than PyTorch eager (a network as small as "
    "LeNet-5 is faster already). Tune it first:\n"
    "    archdsl tune {spec} --db DIR      (then: archdsl compile {spec} --target tvm --db DIR -o OUT)"
)


def _log_default(message: str) -> None:
    print(message, flush=True)


def compile_spec(spec, out_dir: str, checkpoint=None, device: str = "cpu", batch: int = 1, db: str | None = None,
                 target=None, *, bind_weights: bool = True, log=_log_default) -> dict:
    """Compile `spec` (path, text or Network) to `out_dir`; return the metadata written to meta.json.

    `device` picks the default target (cpu: this machine's CPU; cuda: a CUDA GPU with
    DLight's default schedules); `target` overrides it with a TVM target dict.
    `checkpoint` is a state_dict, a path to one (torch.save) or None for random init.
    """
    if batch < 1:
        raise ArchError(f"--batch must be at least 1. Received: {batch}")
    if device not in ("cpu", "cuda"):
        raise ArchError(f"--device must be cpu or cuda. Received: {device!r}")
    start = time.time()
    check_out_dir(out_dir)  # before minutes of building, not after
    net = load_network(spec)
    spec_name = str(getattr(net, "path", None) or net.name)
    state_dict = load_state_dict(checkpoint) if checkpoint is not None else None
    tvm_target = resolve_target(target if target is not None else device)
    database_dir = open_database_dir(db, net, tvm_target, batch, create=False) if db else None
    log(f"compiling {net.name} for {tvm_target} (batch {batch}"
        f"{', tuning database ' + database_dir if database_dir else ', untuned'})")
    if database_dir is None and not is_gpu(tvm_target):
        log(UNTUNED_WARNING.format(spec=spec_name if getattr(net, "path", None) else "SPEC"))
    lowered = lower(net, state_dict, batch=batch, bind_weights=bind_weights)
    report: dict = {}
    executable = build(lowered.mod, tvm_target, database_dir, report)
    tuned, kernels = report.get("tuned_kernels", 0), report.get("kernels", 0)
    if database_dir is not None and tuned < kernels:
        log(f"warning: the tuning database {database_dir} scheduled {tuned} of this network's {kernels} kernels; "
            f"the other {kernels - tuned} run untuned (plain loops). "
            + ("Its records do not match these kernels: " if tuned == 0 else "")
            + f"tune them: archdsl tune {spec_name if getattr(net, 'path', None) else 'SPEC'} --db {database_dir}")
    meta = export(executable, lowered, tvm_target, out_dir, spec_name=spec_name,
                  extra={"network": net.name, "tuned": tuned > 0, "tuned_kernels": tuned, "kernels": kernels,
                         "db": database_dir})
    log(f"wrote {out_dir}/model.so and meta.json in {time.time() - start:.1f} s; run it with: archdsl run {out_dir} --input x.npy")
    return meta
