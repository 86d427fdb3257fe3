"""zsl-cl: zero-shot and one-shot class-incremental learning with a semantic auto-encoder.

Plugins import ``hookimpl`` from here to mark their hook implementations.
The heavier pieces (the strategy, the runner) live in their own modules, so
that importing the package does not import torch or Avalanche.
"""

from zsl_cl.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]

__version__ = "0.1.0"
