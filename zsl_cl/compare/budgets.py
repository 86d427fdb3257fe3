"""Labelled-data budgets: which training samples of each experience every strategy receives."""

from __future__ import annotations

from types import SimpleNamespace

from zsl_cl.streams import StreamLayout, draw_references

__all__ = ["BUDGETS", "budget_stream"]

# one-shot: after experience 0, one labelled sample per new class, drawn with
# draw_references exactly as the SAE draws its references.
# full: every labelled training sample of every experience.
BUDGETS = ("one-shot", "full")


def budget_stream(train_stream, layout: StreamLayout, budget: str, seed: int):
    """Return the training stream that every strategy of one seed trains on.

    Experience 0 always keeps all base-class data. Under the one-shot budget
    each later experience holds only its drawn samples, so a strategy cannot
    read any other training data of that experience.
    """
    from zsl_cl.compare._avalanche import DatasetExperience, EagerCLStream, with_classes_timeline

    experiences = []
    for experience in train_stream:
        index = experience.current_experience
        dataset = experience.dataset
        if budget == "one-shot" and index > 0:
            classes = sorted(experience.classes_in_this_experience)
            dataset = dataset.subset(draw_references(dataset.targets, classes, 1, seed, index))
        experiences.append(DatasetExperience(dataset=dataset, current_experience=index))

    stream = with_classes_timeline(EagerCLStream(train_stream.name, experiences))
    for experience in stream:
        experience.benchmark = _class_order(layout)
    return stream


def _class_order(layout: StreamLayout) -> SimpleNamespace:
    # Avalanche 0.6.0's iCaRL reads n_classes_per_exp and classes_order from
    # experience.benchmark, which class_incremental_benchmark's experiences lack.
    return SimpleNamespace(
        n_classes_per_exp=[len(classes) for classes in layout.experiences],
        classes_order=[c for classes in layout.experiences for c in classes],
    )
