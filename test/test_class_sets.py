"""Coarse label spaces: CamVid's 11 classes as sets of the model's 19, and training ids for them."""

from __future__ import annotations

import numpy as np
import pytest

from ddrnet_ros.classes import CAMVID, LABEL_SPACES, ClassMap, ClassMapError, CoarseLabelSpace, TrainingLabelSets

CITYSCAPES = ClassMap.builtin()


def test_every_camvid_class_maps_to_a_non_empty_set():
    assert CAMVID.num_classes == 11
    assert all(len(members) >= 1 for members in CAMVID.sets)


def test_camvid_sets_are_disjoint_and_cover_all_19_classes_once():
    table = CAMVID.membership(CITYSCAPES)
    assert table.shape == (11, 19)
    np.testing.assert_array_equal(table.sum(axis=0), np.ones(19))


def test_the_issue_table_holds():
    sets = dict(zip(CAMVID.names, CAMVID.sets))
    assert set(sets["car"]) == {"car", "truck", "bus", "train"}
    assert set(sets["bicyclist"]) == {"rider", "motorcycle", "bicycle"}
    assert set(sets["tree"]) == {"vegetation", "terrain"}
    assert set(sets["sign symbol"]) == {"traffic light", "traffic sign"}
    assert set(sets["building"]) == {"building", "wall"}
    assert LABEL_SPACES["camvid"] is CAMVID


def test_predictions_map_to_the_coarse_class_holding_them():
    lookup = CAMVID.prediction_lookup(CITYSCAPES)
    name = {i: n for i, n in enumerate(CITYSCAPES.names)}
    for model_id in range(19):
        coarse = lookup[model_id]
        assert name[model_id] in CAMVID.sets[coarse]
    assert lookup[255] == 255 and lookup[19] == 255


@pytest.mark.parametrize("sets, message", [
    ((("sky",), ()), "maps to no model class"),
    ((("sky",), ("spaceship",)), "unknown class"),
    ((("sky",), ("sky", "road")), "exactly once"),
])
def test_a_bad_table_is_refused(sets, message):
    space = CoarseLabelSpace("bad", ("a", "b"), sets, np.zeros((2, 3), np.uint8), ignore_label=2)
    with pytest.raises(ClassMapError, match=message):
        space.membership(CITYSCAPES)


def test_training_ids_put_coarse_classes_after_the_model_classes():
    sets = TrainingLabelSets.build(CITYSCAPES, [CAMVID])
    assert sets.offsets == {"camvid": 19}
    np.testing.assert_array_equal(sets.table[:19], np.eye(19, dtype=bool))
    np.testing.assert_array_equal(sets.table[19:30], CAMVID.membership(CITYSCAPES))
    assert sets.valid[:30].all() and not sets.valid[30:].any()
    encoder = sets.encoder(CAMVID)
    assert encoder[0] == 19 and encoder[10] == 29 and encoder[255] == 255 and encoder[11] == 255


def test_without_coarse_spaces_there_are_no_sets():
    assert not TrainingLabelSets.build(CITYSCAPES).has_sets


def test_camvid_unlabelled_becomes_the_ignore_label():
    labels = np.array([[0, 10, 11, 200]], np.uint8)
    np.testing.assert_array_equal(CAMVID.normalise_labels(labels), [[0, 10, 255, 255]])
