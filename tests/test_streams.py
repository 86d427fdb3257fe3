"""Class layout of the emnist-incremental stream and the shared reference draw."""

from types import SimpleNamespace

import numpy as np
import pytest

from zsl_cl.data.classes import CLASS_NAMES, NUM_CLASSES, class_index
from zsl_cl.streams import build_stream, draw_references, plan_stream


def names(classes):
    return "".join(sorted(CLASS_NAMES[c] for c in classes))


def test_r0_layout():
    layout = plan_stream(split="R0", classes_per_exp=3, seed=0)
    assert names(layout.new_classes) == names(class_index(c) for c in "2679ELVWY")
    assert len(layout.base_classes) == 26
    assert [len(exp) for exp in layout.experiences] == [26, 3, 3, 3]


def test_r1_layout_last_experience_takes_remainder():
    layout = plan_stream(split="R1", classes_per_exp=3, seed=0)
    assert len(layout.base_classes) == 12
    assert [len(exp) for exp in layout.experiences[1:]] == [3, 3, 3, 3, 3, 3, 3, 2]
    assert names(layout.base_classes) == names(class_index(c) for c in "59CFGNQRSTUZ")


def test_default_is_r0():
    assert plan_stream(seed=0) == plan_stream(split="R0", seed=0)


def test_seed_changes_arrival_order_only():
    a, b = plan_stream(split="R0", seed=0), plan_stream(split="R0", seed=1)
    assert sorted(a.new_classes) == sorted(b.new_classes)
    assert a.new_classes != b.new_classes


def test_unseen_characters():
    layout = plan_stream(unseen="AB", classes_per_exp=1, seed=0)
    assert sorted(layout.new_classes) == [class_index("A"), class_index("B")]
    assert len(layout.experiences) == 3


def test_letter_o_is_class_zero():
    layout = plan_stream(unseen="O", classes_per_exp=1, seed=0)
    assert layout.new_classes == [0]


def test_random_base_classes():
    layout = plan_stream(base_classes=20, classes_per_exp=5, seed=4)
    assert len(layout.base_classes) == 20
    assert len(layout.new_classes) == 15
    assert sorted(layout.base_classes + layout.new_classes) == list(range(NUM_CLASSES))
    assert plan_stream(base_classes=20, classes_per_exp=5, seed=5).base_classes != layout.base_classes


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"unseen": "2x"}, "lowercase"),
        ({"unseen": "22"}, "duplicate"),
        ({"unseen": "0O"}, "duplicate"),
        ({"unseen": "2#"}, "unknown character"),
        ({"unseen": ""}, "empty"),
        ({"unseen": "".join(CLASS_NAMES)}, "every class"),
        ({"split": "R2"}, "unknown split"),
        ({"split": "R0", "unseen": "2"}, "only one"),
        ({"base_classes": 35}, "base-classes"),
        ({"base_classes": 0}, "base-classes"),
        ({"split": "R0", "classes_per_exp": 0}, "classes-per-exp"),
        ({"split": "R0", "classes_per_exp": 10}, "classes-per-exp"),
        ({"split": "R0", "seed": -1}, "seed"),
    ],
)
def test_plan_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_stream(**kwargs)


def synthetic_data(per_class=4, missing=None):
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    if missing is not None:
        labels = labels[labels != missing]
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    return SimpleNamespace(train_images=images, train_labels=labels, test_images=images, test_labels=labels, source="synthetic")


def test_benchmark_experiences_follow_layout():
    layout = plan_stream(split="R0", seed=2)
    benchmark = build_stream(synthetic_data(), layout)
    for train_exp, test_exp, classes in zip(benchmark.train_stream, benchmark.test_stream, layout.experiences):
        assert sorted(train_exp.classes_in_this_experience) == sorted(classes)
        assert sorted(set(test_exp.dataset.targets)) == sorted(classes)
        assert len(train_exp.dataset) == 4 * len(classes)


def test_benchmark_rejects_class_without_data():
    with pytest.raises(ValueError, match="has no training data"):
        build_stream(synthetic_data(missing=class_index("E")), plan_stream(split="R0", seed=0))


def test_reference_draw_is_deterministic_and_per_class():
    targets = [0, 0, 0, 1, 1, 1, 2, 2]
    first = draw_references(targets, [1, 2], shots=1, seed=3, experience=1)
    assert first == draw_references(targets, [2, 1], shots=1, seed=3, experience=1)
    assert [targets[i] for i in first] == [1, 2]
    draws = {tuple(draw_references(targets, [0, 1], 1, seed, 1)) for seed in range(20)}
    assert len(draws) > 1


def test_reference_draw_rejects_too_many_shots():
    with pytest.raises(ValueError, match="fewer than --shots 3"):
        draw_references([0, 0, 1], [0], shots=3, seed=0, experience=1)
