"""Hook specifications: the extension points that zsl-cl plugins implement."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("zsl_cl")
hookimpl = pluggy.HookimplMarker("zsl_cl")


@hookspec
def register_solvers(register):
    """Register Sylvester solvers with ``register(name, factory, description)``."""


@hookspec
def register_distances(register):
    """Register latent-space distances with ``register(name, factory, description)``."""


@hookspec
def register_decoders(register):
    """Register latent-to-image decoders with ``register(name, factory, description)``."""


@hookspec
def after_backbone_trained(strategy, model):
    """Run after the CNN backbone is trained on the base classes and the SAE is solved."""


@hookspec
def after_references_rebuilt(strategy, references):
    """Run after the references of every class seen so far are rebuilt."""


@hookspec
def after_head_expanded(strategy, head, new_classes):
    """Run after the classifier head grows by new classes without gradient steps."""


@hookspec
def after_experience_evaluated(strategy, experience_index, metrics):
    """Run after an experience is evaluated, with its metrics as a dict."""
