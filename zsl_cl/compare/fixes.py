"""A workaround for a bug in Avalanche 0.6.0 that the compared strategies would otherwise hit."""

from __future__ import annotations

import contextlib
from unittest import mock

__all__ = ["copied_si_parameters"]


@contextlib.contextmanager
def copied_si_parameters():
    """Make SynapticIntelligencePlugin copy parameters and gradients instead of keeping views of them.

    Avalanche 0.6.0 stores ``param.detach().cpu().flatten()``, which on a CPU
    device is a view of the live parameter. The weights "before" and "after"
    each step are then the same tensor, so the path integral, the importances
    and the penalty are all zero and SI trains exactly like Naive. Inside
    this context the plugin stores copies. The plugin calls these helpers as
    ``SynapticIntelligencePlugin.extract_weights`` from its own static
    methods, so a subclass cannot replace them and the class is patched for
    the duration of the context only.
    """
    from zsl_cl.compare._avalanche import SynapticIntelligencePlugin as plugin_class

    def extract_weights(model, target, excluded_parameters):
        for name, param in plugin_class.allowed_parameters(model, excluded_parameters):
            target[name].data = param.detach().cpu().flatten().clone()

    def extract_grad(model, target, excluded_parameters):
        for name, param in plugin_class.allowed_parameters(model, excluded_parameters):
            target[name].data = param.grad.detach().cpu().flatten().clone()

    with mock.patch.object(plugin_class, "extract_weights", staticmethod(extract_weights)):
        with mock.patch.object(plugin_class, "extract_grad", staticmethod(extract_grad)):
            yield
