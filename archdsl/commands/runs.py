"""`archdsl runs [DIR]`: list training run folders; `--compare A B` draws their curves in one plot.

    archdsl runs                                   every run under runs/
    archdsl runs runs/ --compare runs/a runs/b -o a-vs-b.png
"""
from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list training run folders (spec, epochs, best and test top-1, wall time)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("dir", nargs="?", default="runs", metavar="DIR", help="folder holding run folders (default runs)")
    p.add_argument("--compare", nargs="+", metavar="RUN", help="run folders whose curves to draw in one plot")
    p.add_argument("-o", "--out", metavar="FILE", help="the comparison plot (default compare.png); .png, .svg, .pdf")


def run(args) -> int:
    from pathlib import Path

    from archdsl.errors import ArchError
    from archdsl.train import runs

    if args.compare:
        if len(args.compare) < 2:
            raise ArchError("--compare expects two run folders or more, got one")
        chosen = []
        for folder in args.compare:
            path = Path(folder)
            if not runs.is_run(path):  # the folder itself; runs under it do not count
                raise ArchError(f"'{folder}' is not a run folder (one with config.json and metrics.csv); "
                                f"`archdsl runs {args.dir}` lists them")
            found = runs.read_run(path)
            if not found.rows:
                raise ArchError(f"run '{folder}' has no finished epoch to draw")
            chosen.append(found)
        out = Path(args.out or "compare.png")
        out.parent.mkdir(parents=True, exist_ok=True)
        runs.plot_compare(chosen, out)
        print(runs.table(chosen, Path.cwd()))
        print(f"curves: {out}")
        return 0
    root = Path(args.dir)
    found = runs.find_runs(root)
    if not found:
        print(f"no run folders under {root}")
        return 0
    print(runs.table(found, root))
    return 0
