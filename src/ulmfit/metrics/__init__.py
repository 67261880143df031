"""`evaluate` metric modules shipped inside the package, so metrics work offline (Hub metric scripts do not).

Each sub-folder holds one metric script; `load(name)` is `evaluate.load` on that folder.
"""

from importlib import resources

import evaluate


AVAILABLE = ("accuracy", "f1", "multilabel", "regression", "language_model", "bleu_chrf", "hit_at_k")


def metric_path(name: str) -> str:
    """The folder of a shipped metric, for `evaluate.load(path)`."""
    if name not in AVAILABLE:
        raise ValueError(f"Unknown metric {name!r}; shipped metrics are {list(AVAILABLE)}.")
    return str(resources.files("ulmfit") / "metrics" / name)


def load(name: str, **kwargs) -> evaluate.EvaluationModule:
    """`evaluate.load` of a shipped metric (kwargs such as `num_process`/`process_id` pass through)."""
    return evaluate.load(metric_path(name), **kwargs)


__all__ = ["AVAILABLE", "load", "metric_path"]
