"""QAT building blocks: BatchNorm folding is exact, fake quantization lands on the grid."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the train extra (CPU PyTorch) is not installed")

from edgekit.train import examples  # noqa: E402
from edgekit.train.qat import FakeQuant, fold_batchnorm, unwrap, weight_levels, weight_scale, wrap  # noqa: E402


def test_folding_batchnorm_keeps_the_outputs() -> None:
    torch.manual_seed(0)
    model = examples.ds_cnn(16)
    model.train()
    model(torch.rand(32, 1, 8, 8))  # non-trivial running statistics
    model.eval()
    folded = fold_batchnorm(model)
    x = torch.rand(5, 1, 8, 8)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(model(x), folded(x), atol=1e-5)


def test_weights_snap_to_the_symmetric_grid() -> None:
    layer = torch.nn.Conv2d(2, 3, 3)
    model = unwrap(wrap(torch.nn.Sequential(layer), weight_levels(4), per_channel=True))
    weight = model[0].weight.detach()
    scale = weight_scale(weight, 7, True)[:, None, None, None]
    levels = weight / scale
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert levels.abs().max() <= 7 + 1e-4


def test_per_tensor_uses_one_scale_and_wrappers_cover_every_layer() -> None:
    model = wrap(examples.ds_cnn(16), weight_levels(8), per_channel=False)
    wrapped = [m for m in model.modules() if isinstance(m, FakeQuant)]
    assert len(wrapped) == 6  # five convolutions and the classifier
    assert weight_scale(wrapped[0].layer.weight, 127, False).ndim == 0


def test_levels_follow_bits_and_onnxruntime_reduced_range() -> None:
    assert [weight_levels(b) for b in (8, 4, 2)] == [127, 7, 1]
    assert weight_levels(8, reduce_range=True) == 64 and weight_levels(4, reduce_range=True) == 7
