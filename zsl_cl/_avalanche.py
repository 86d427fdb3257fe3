"""Quiet imports of Avalanche.

Avalanche 0.6.0 imports qpsolvers, which warns on import when no QP solver is
installed. zsl-cl never uses a QP solver, so that one warning is silenced here
and every Avalanche import goes through this module.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*QP solver.*", category=UserWarning)
    warnings.filterwarnings("ignore", module="qpsolvers")
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.core import SupervisedPlugin
    from avalanche.models import IncrementalClassifier
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.templates import SupervisedTemplate

__all__ = [
    "class_incremental_benchmark",
    "EvaluationPlugin",
    "IncrementalClassifier",
    "SupervisedPlugin",
    "SupervisedTemplate",
]
