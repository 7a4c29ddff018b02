"""OHEM cross-entropy and the main + auxiliary loss, checked against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from ddrnet_ros.training.losses import DDRNetLoss, OhemCrossEntropy


def two_class_logits(true_class_prob: list[list[float]]) -> torch.Tensor:
    """(1, 2, H, W) logits whose softmax gives class 0 exactly the given probabilities."""
    p = torch.tensor(true_class_prob, dtype=torch.float64)
    return torch.stack([p.log(), (1 - p).log()]).unsqueeze(0)


PROBS = [[0.9, 0.6, 0.3], [0.95, 0.5, 0.8]]


def mean_nll(probs: list[float]) -> float:
    return sum(-math.log(p) for p in probs) / len(probs)


def test_ohem_averages_only_pixels_below_threshold():
    logits = two_class_logits(PROBS)
    labels = torch.zeros(1, 2, 3, dtype=torch.long)
    loss = OhemCrossEntropy(threshold=0.7, min_kept=1)
    assert loss(logits, labels).item() == pytest.approx(mean_nll([0.6, 0.3, 0.5]), rel=1e-9)
    mask = loss.hard_pixel_mask(logits, labels)
    assert mask.tolist() == [[[False, True, True], [False, True, False]]]


def test_ohem_never_counts_ignored_pixels():
    probs = [[0.9, 0.6, 0.3], [0.01, 0.5, 0.8]]  # the 0.01 pixel is the hardest, but ignored
    logits = two_class_logits(probs)
    labels = torch.zeros(1, 2, 3, dtype=torch.long)
    labels[0, 1, 0] = 255
    loss = OhemCrossEntropy(threshold=0.7, min_kept=1)
    assert loss(logits, labels).item() == pytest.approx(mean_nll([0.6, 0.3, 0.5]), rel=1e-9)
    assert not loss.hard_pixel_mask(logits, labels)[0, 1, 0]
    # Even when min_kept asks for every pixel, ignored ones stay out.
    assert OhemCrossEntropy(min_kept=100)(logits, labels).item() == pytest.approx(
        mean_nll([0.9, 0.6, 0.3, 0.5, 0.8]), rel=1e-9)


def test_ohem_keeps_the_min_kept_hardest_when_too_few_are_hard():
    logits = two_class_logits(PROBS)
    labels = torch.zeros(1, 2, 3, dtype=torch.long)
    loss = OhemCrossEntropy(threshold=0.7, min_kept=4)  # only 3 are below 0.7
    assert loss(logits, labels).item() == pytest.approx(mean_nll([0.3, 0.5, 0.6, 0.8]), rel=1e-9)
    assert int(loss.hard_pixel_mask(logits, labels).sum()) == 4


def test_ohem_gradient_reaches_only_kept_pixels():
    logits = two_class_logits(PROBS).requires_grad_(True)
    labels = torch.zeros(1, 2, 3, dtype=torch.long)
    OhemCrossEntropy(threshold=0.7, min_kept=1)(logits, labels).backward()
    touched = logits.grad.abs().sum(1)[0] > 0
    assert touched.tolist() == [[False, True, True], [False, True, False]]


def test_ohem_upsamples_low_resolution_logits_bilinearly_to_label_size():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, 6, dtype=torch.float64)
    labels = torch.randint(0, 5, (2, 32, 48))
    labels[:, :3] = 255
    got = OhemCrossEntropy(threshold=1.0, min_kept=0)(logits, labels)  # threshold 1: every valid pixel
    up = F.interpolate(logits, size=(32, 48), mode="bilinear", align_corners=False)
    assert got.item() == pytest.approx(F.cross_entropy(up, labels, ignore_index=255).item(), rel=1e-9)


def test_ohem_of_a_fully_ignored_batch_is_zero_and_backpropagates():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    labels = torch.full((1, 16, 16), 255)
    value = OhemCrossEntropy()(logits, labels)
    value.backward()
    assert value.item() == 0.0
    assert torch.count_nonzero(logits.grad) == 0


def test_ddrnet_loss_adds_aux_head_with_weight_0_4():
    torch.manual_seed(1)
    main = torch.randn(2, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    aux = torch.randn(2, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (2, 32, 32))
    criterion = OhemCrossEntropy(threshold=0.7, min_kept=50)
    combined = DDRNetLoss(criterion)
    assert combined.weights == (1.0, 0.4)
    total = combined([main, aux], labels)
    expected = criterion(main, labels) + 0.4 * criterion(aux, labels)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)

    total.backward()
    aux_alone = aux.detach().clone().requires_grad_(True)
    criterion(aux_alone, labels).backward()
    torch.testing.assert_close(aux.grad, 0.4 * aux_alone.grad)


def test_ddrnet_loss_of_a_single_output_is_the_main_loss():
    torch.manual_seed(2)
    logits = torch.randn(1, 3, 4, 4)
    labels = torch.randint(0, 3, (1, 32, 32))
    criterion = OhemCrossEntropy(min_kept=10)
    assert DDRNetLoss(criterion, weights=(1.0, 0.4))(logits, labels).item() == pytest.approx(
        criterion(logits, labels).item())


def test_ohem_rejects_a_threshold_outside_0_1():
    with pytest.raises(ValueError, match="threshold"):
        OhemCrossEntropy(threshold=1.5)


# --------------------------------------------------------------------------------------------
# set-valued (partial-label) loss for coarse labels


def _set_loss(threshold=1.0, min_kept=0):
    from ddrnet_ros.classes import CAMVID, ClassMap, TrainingLabelSets

    sets = TrainingLabelSets.build(ClassMap.builtin(), [CAMVID])
    return OhemCrossEntropy(255, threshold, min_kept, sets), sets


def test_set_loss_equals_cross_entropy_when_every_label_is_one_class():
    torch.manual_seed(0)
    logits = torch.randn(2, 19, 6, 7, dtype=torch.float64)
    labels = torch.randint(0, 19, (2, 6, 7))
    labels[0, 0, :3] = 255
    loss, _ = _set_loss()
    expected = F.cross_entropy(logits, labels, ignore_index=255)
    assert loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-9)


def test_set_loss_is_minus_log_of_the_set_probability():
    from ddrnet_ros.classes import CAMVID

    loss, sets = _set_loss()
    logits = torch.randn(1, 19, 1, 1, dtype=torch.float64)
    car = CAMVID.names.index("car")
    labels = torch.full((1, 1, 1), sets.offsets["camvid"] + car)
    members = torch.from_numpy(sets.table[sets.offsets["camvid"] + car])
    p_set = torch.softmax(logits, 1)[0, :, 0, 0][members].sum()
    assert loss(logits, labels).item() == pytest.approx(-math.log(p_set.item()), rel=1e-9)


def test_set_loss_gradient_moves_mass_into_the_set_and_leaves_its_split_alone():
    from ddrnet_ros.classes import CAMVID

    loss, sets = _set_loss()
    logits = torch.randn(1, 19, 1, 1, dtype=torch.float64, requires_grad=True)
    car = CAMVID.names.index("car")
    labels = torch.full((1, 1, 1), sets.offsets["camvid"] + car)
    loss(logits, labels).backward()
    members = torch.from_numpy(sets.table[sets.offsets["camvid"] + car])
    grad = logits.grad[0, :, 0, 0]
    assert (grad[members] <= 0).all() and (grad[~members] >= 0).all()  # descent raises members, lowers others
    # Within the set the gradient is proportional to each member's share: the split is not pushed.
    p = torch.softmax(logits.detach(), 1)[0, :, 0, 0]
    share = p[members] / p[members].sum()
    ratio = grad[members] / share
    assert torch.allclose(ratio, ratio[0].expand_as(ratio))


def test_set_loss_never_counts_ignored_pixels_and_ohem_ranks_by_set_probability():
    from ddrnet_ros.classes import CAMVID

    loss, sets = _set_loss(threshold=0.7, min_kept=0)
    offset = sets.offsets["camvid"]
    logits = torch.full((1, 19, 1, 3), -10.0, dtype=torch.float64)
    car_members = torch.from_numpy(sets.table[offset + CAMVID.names.index("car")])
    logits[0, car_members, 0, 0] = 5.0       # pixel 0: sure it is some kind of car: easy
    logits[0, 0, 0, 1] = 5.0                 # pixel 1: sure it is road, labelled car: hard
    labels = torch.tensor([[[offset + CAMVID.names.index("car"), offset + CAMVID.names.index("car"), 255]]])
    mask = loss.hard_pixel_mask(logits, labels)
    assert mask.tolist() == [[[False, True, False]]]
    total = loss(logits, labels)
    p_set = torch.softmax(logits, 1)[0, car_members, 0, 1].sum()
    assert total.item() == pytest.approx(-math.log(p_set.item()), rel=1e-6)


# class weights


def test_class_weights_make_the_loss_a_weighted_mean_over_the_kept_pixels():
    logits = two_class_logits(PROBS)
    labels = torch.tensor([[[0, 0, 1], [0, 1, 0]]])
    # class 1's pixels: softmax(class 1) = 1 - p
    plain = OhemCrossEntropy(threshold=1.0, min_kept=0)
    weighted = OhemCrossEntropy(threshold=1.0, min_kept=0, class_weights=[1.0, 3.0])
    nll = {(0, 0): -math.log(0.9), (0, 1): -math.log(0.6), (0, 2): -math.log(0.7),
           (1, 0): -math.log(0.95), (1, 1): -math.log(0.5), (1, 2): -math.log(0.8)}
    weights = {k: 3.0 if labels[0, k[0], k[1]] == 1 else 1.0 for k in nll}
    expected = sum(weights[k] * nll[k] for k in nll) / sum(weights.values())
    assert weighted(logits, labels).item() == pytest.approx(expected, rel=1e-9)
    assert plain(logits, labels).item() == pytest.approx(sum(nll.values()) / 6, rel=1e-9)
    # equal weights are the plain loss; ignored pixels stay out of both sums
    labels[0, 0, 0] = 255
    same = OhemCrossEntropy(threshold=1.0, min_kept=0, class_weights=[2.0, 2.0])
    assert same(logits, labels).item() == pytest.approx(plain(logits, labels).item(), rel=1e-9)


def test_a_coarse_label_weighs_like_its_heaviest_class_and_ohem_selection_ignores_weights():
    from ddrnet_ros.classes import CAMVID, ClassMap, TrainingLabelSets

    classes = ClassMap.builtin()
    sets = TrainingLabelSets.build(classes, [CAMVID])
    per_class = [1.0] * 19
    per_class[classes.names.index("traffic sign")] = 2.5
    per_label = sets.label_weights(per_class)
    sign = sets.offsets["camvid"] + CAMVID.names.index("sign symbol")
    assert per_label[sign] == 2.5 and per_label[classes.names.index("traffic light")] == 1.0
    assert per_label[sets.offsets["camvid"] + CAMVID.names.index("road")] == 1.0 and per_label[255] == 0.0
    torch.manual_seed(0)
    logits = torch.randn(1, 19, 4, 5, dtype=torch.float64)
    labels = torch.randint(0, 19, (1, 4, 5))
    labels[0, 0] = sign
    weighted = OhemCrossEntropy(255, 0.7, 3, sets, per_class)
    plain = OhemCrossEntropy(255, 0.7, 3, sets)
    assert torch.equal(weighted.hard_pixel_mask(logits, labels), plain.hard_pixel_mask(logits, labels))
    with pytest.raises(ValueError, match="> 0"):
        OhemCrossEntropy(class_weights=[1.0, 0.0])
