"""A tuning database directory with a manifest saying what it was tuned for.

MetaSchedule's JSON database holds records keyed by kernel workload and target; a
database tuned on another CPU or for another network would silently not apply (or
apply kernels tuned for another machine). So every database directory archdsl
writes gets `archdsl-db.json` with the target and a fingerprint of the network,
and a mismatch is refused with a message.
"""
from __future__ import annotations

import hashlib
import json
import os

from ...errors import ArchError
from ...files import make_folder, open_regular, write_text
from .target import target_to_dict

MANIFEST = "archdsl-db.json"
# Bumped whenever the records of an older archdsl no longer hold: `build.optimize`
# changed the kernels it hands to MetaSchedule (their layouts, fusion), or how they
# are measured.
# 2: CPU convolutions in NHWC with layout-free (prepacked) weights.
# 3: candidates measured with a thread per core (before, TVM's runtime used half the
#    cores, and the records' times do not compare).
PIPELINE_VERSION = 3
RECORD_FILES = ("database_workload.json", "database_tuning_record.json")
# The best record of each kernel, rewritten after every tuning run. Builds read it:
# loading all of ResNet-18's 4,000 records took 30 s, its 20 best 0.2 s. Tuning
# again reads the whole database, whose other records seed the search.
BEST = "best"


def network_fingerprint(net, batch: int = 1) -> str:
    """A hash of what the kernels depend on: ops, wiring and shapes (not weights, not names of files)."""
    digest = hashlib.sha256()
    digest.update(repr((tuple(net.input_shape), batch)).encode())
    for layer in net.layers:
        digest.update(repr((layer.name, type(layer.op).__name__, repr(layer.op), tuple(layer.inputs), tuple(layer.shape))).encode())
    return digest.hexdigest()[:16]


def _comparable_target(target) -> dict:
    # 'tag' and 'keys' are derived; what makes kernels differ is kind, cpu/arch and cores.
    spec = target_to_dict(target)
    return {key: spec[key] for key in ("kind", "mcpu", "mtriple", "mattr", "num-cores", "arch") if key in spec}


def has_records(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, name)) for name in RECORD_FILES)


def open_database_dir(path: str, net, target, batch: int = 1, *, create: bool) -> str:
    """Check (or, with create=True, claim) `path` as the database for this network and target.

    Returns the directory. Raises ArchError if it belongs to another network or target,
    or (create=False) if there is no database there.
    """
    manifest_path = os.path.join(path, MANIFEST)
    wanted = {"network": net.name, "fingerprint": network_fingerprint(net, batch), "batch": batch,
              "target": _comparable_target(target), "pipeline": PIPELINE_VERSION}
    if os.path.exists(manifest_path):
        with open_regular(manifest_path, f"the {MANIFEST} manifest archdsl tune writes") as handle:
            try:
                found = json.loads(handle.read(1 << 20))
            except (ValueError, UnicodeDecodeError):
                found = None
        if not isinstance(found, dict):
            raise ArchError(f"{manifest_path} is not the manifest archdsl writes (not a JSON object); remove the"
                            f" directory {path} or pick another --db")
        if found.get("target") != wanted["target"]:
            raise ArchError(
                f"the tuning database in {path} was tuned for target {found.get('target')}, not {wanted['target']}; "
                "tune again into another --db directory for this machine")
        if found.get("pipeline", 1) != PIPELINE_VERSION:
            raise ArchError(
                f"the tuning database in {path} was made by an older archdsl (tuning pipeline "
                f"{found.get('pipeline', 1)}, now {PIPELINE_VERSION}), whose records do not hold for this one's "
                "kernels; tune again into a new --db directory")
        if found.get("fingerprint") != wanted["fingerprint"]:
            raise ArchError(
                f"the tuning database in {path} was tuned for network '{found.get('network')}' "
                f"(batch {found.get('batch')}), not for this '{net.name}' (batch {batch}); "
                "use one --db directory per network, or tune this one into a new directory")
    elif not create:
        if os.path.isdir(path) and has_records(path):
            raise ArchError(f"{path} holds a tuning database archdsl did not write (no {MANIFEST}); "
                            "archdsl cannot check it fits this network and target")
        raise ArchError(f"there is no tuning database in {path}; create one with: archdsl tune SPEC --db {path}")
    else:
        if os.path.isdir(path) and has_records(path):
            raise ArchError(f"{path} already holds a tuning database without an archdsl manifest; pick an empty --db directory")
        make_folder(path)
        write_text(manifest_path, json.dumps(wanted, indent=2))
    if not create and not has_records(path):
        raise ArchError(f"the tuning database in {path} has no records yet; run: archdsl tune SPEC --db {path}")
    return path


def best_records_dir(path: str) -> str:
    """Where a build should read `path`'s records: its pruned copy when there is one."""
    best = os.path.join(path, BEST)
    return best if has_records(best) else path


def write_best_records(path: str) -> str:
    """(Re)write `path`/best with the best record of every kernel in `path`; return it."""
    import shutil
    import tempfile

    from tvm.s_tir import meta_schedule as ms

    staging = tempfile.mkdtemp(prefix=".best-", dir=path)  # a build never sees a half-written copy
    ms.database.JSONDatabase(work_dir=path).dump_pruned(ms.database.JSONDatabase(work_dir=staging))
    best = os.path.join(path, BEST)
    shutil.rmtree(best, ignore_errors=True)
    os.replace(staging, best)
    return best
