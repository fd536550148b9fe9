"""Analysis passes over the graph IR, one per file, each a plain function `graph → graph`
(or → findings). `run_all` is the order `archdsl.load` applies them in."""
from .count import count_costs
from .fit_check import check_fit
from .receptive_field import receptive_fields
from .resolve_bias import resolve_bias


def run_all(graph):
    resolve_bias(graph)
    count_costs(graph)
    receptive_fields(graph)
    return check_fit(graph)


__all__ = ["resolve_bias", "count_costs", "receptive_fields", "check_fit", "run_all"]
