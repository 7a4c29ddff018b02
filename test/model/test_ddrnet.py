"""The three DDRNet variants have the official layout: keys, order, shapes, dtypes, counts, outputs."""

from __future__ import annotations

import pytest
import torch

from ddrnet_ros.model import INPUT_MULTIPLE, OUTPUT_STRIDE, create_model

VARIANTS = ("ddrnet23_slim", "ddrnet23", "ddrnet39")


def trainable_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layout(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_layout_equals_official_manifest(variant, official_manifest):
    manifest = official_manifest(variant)
    model = create_model(variant)
    assert layout(model) == list(manifest.entries)  # same keys, same order, same shapes and dtypes
    assert len(model.state_dict()) == manifest.state_dict_entries
    assert trainable_params(model) == manifest.trainable_params


@pytest.mark.parametrize("variant", VARIANTS)
def test_aux_head_layout_equals_official_augment_manifest(variant, official_manifest):
    manifest = official_manifest(variant, augment=True)
    model = create_model(variant, aux=True)
    assert layout(model) == list(manifest.entries)
    assert trainable_params(model) == manifest.trainable_params


@pytest.mark.parametrize("variant, params", [("ddrnet23_slim", 5_695_987), ("ddrnet23", 20_148_947),
                                             ("ddrnet39", 32_360_275)])
def test_parameter_counts_equal_the_published_architecture(variant, params):
    # Counts from the official constructors (../shared/ddrnet/architecture.md); no manifest needed.
    assert trainable_params(create_model(variant)) == params


@pytest.mark.parametrize("variant, height, width", [("ddrnet23_slim", 64, 128), ("ddrnet23_slim", 72, 104),
                                                   ("ddrnet23", 64, 64), ("ddrnet39", 64, 64)])
def test_eval_forward_returns_logits_at_one_eighth(variant, height, width):
    model = create_model(variant, num_classes=7).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, height, width))
    assert out.shape == (1, 7, height // OUTPUT_STRIDE, width // OUTPUT_STRIDE)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_aux_model_returns_main_and_aux_logits_only_in_training():
    model = create_model("ddrnet23_slim", num_classes=5, aux=True)
    x = torch.randn(2, 3, 64, 64)
    main, aux = model.train()(x)
    assert main.shape == aux.shape == (2, 5, 8, 8)
    out = model.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, 8, 8)


def test_input_sides_must_be_multiples_of_eight():
    assert INPUT_MULTIPLE == 8
    model = create_model("ddrnet23_slim").eval()
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 3, 68, 64))  # 68 is not a multiple of 8: the fusion adds mismatch


def test_unknown_variant_and_bad_class_count_are_clear_errors():
    with pytest.raises(ValueError, match="unknown DDRNet variant 'ddrnet99'.*ddrnet23_slim"):
        create_model("ddrnet99")
    with pytest.raises(ValueError, match="num_classes must be positive"):
        create_model("ddrnet23", num_classes=0)
