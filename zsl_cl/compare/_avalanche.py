"""Quiet imports of the Avalanche strategies, plugins, metrics and models that compare uses.

Avalanche 0.6.0 imports qpsolvers, which warns on import when no QP solver is
installed. compare never uses a QP solver, so that warning is silenced here,
as in ``zsl_cl._avalanche``, and every Avalanche import of this subpackage
goes through this module.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*QP solver.*", category=UserWarning)
    warnings.filterwarnings("ignore", module="qpsolvers")
    from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience
    from avalanche.benchmarks.scenarios.generic_scenario import EagerCLStream
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.logging import CSVLogger, TensorboardLogger, TextLogger
    from avalanche.evaluation.metrics import MaxRAM, accuracy_metrics, bwt_metrics, forgetting_metrics
    from avalanche.models import NCMClassifier
    from avalanche.training.plugins import EvaluationPlugin, SynapticIntelligencePlugin
    from avalanche.training.supervised import (
        EWC,
        GDumb,
        ICaRL,
        LwF,
        Cumulative,
        Naive,
        Replay,
        StreamingLDA,
        SynapticIntelligence,
    )

    # NOTE: iCaRL's plugin class is private in Avalanche 0.6.0. compare only
    # reads it to find the plugin among a strategy's plugins and set the
    # sizes that it otherwise records during the first training forward pass.
    from avalanche.training.supervised.icarl import _ICaRLPlugin as ICaRLPlugin

__all__ = [
    "DatasetExperience",
    "EagerCLStream",
    "with_classes_timeline",
    "CSVLogger",
    "TensorboardLogger",
    "TextLogger",
    "MaxRAM",
    "accuracy_metrics",
    "bwt_metrics",
    "forgetting_metrics",
    "NCMClassifier",
    "EvaluationPlugin",
    "SynapticIntelligencePlugin",
    "EWC",
    "GDumb",
    "ICaRL",
    "ICaRLPlugin",
    "LwF",
    "Cumulative",
    "Naive",
    "Replay",
    "StreamingLDA",
    "SynapticIntelligence",
]
