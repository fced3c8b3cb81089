"""Structured channel pruning of torch models: shapes follow, counts round to multiples of 8."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the train extra (CPU PyTorch) is not installed")

from edgekit.core.errors import UsageError  # noqa: E402
from edgekit.train import examples  # noqa: E402
from edgekit.train.prune import channel_counts, find_groups, prune_channels  # noqa: E402


@pytest.mark.parametrize("factory", [examples.ds_cnn, examples.wide_cnn, examples.digits_cnn, examples.mlp])
def test_pruned_model_still_runs_and_is_smaller(factory: object) -> None:
    torch.manual_seed(0)
    model = factory().eval()  # type: ignore[operator]
    pruned, report = prune_channels(model, 0.5)
    assert pruned(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    assert all(item["channels_after"] * 2 == item["channels_before"] for item in report)
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)  # the original is untouched


def test_depthwise_layers_shrink_with_the_channels_they_carry() -> None:
    model = examples.ds_cnn(32).eval()
    assert [g.producer.qualname for g in find_groups(model)] == ["0", "6", "13"]
    pruned, _ = prune_channels(model, 0.5)
    depthwise = pruned[3]
    assert depthwise.groups == depthwise.in_channels == depthwise.out_channels == 16
    assert pruned[4].num_features == 16 and pruned[6].in_channels == 16


def test_the_lowest_l1_channels_go() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(16, dtype=torch.float32)[:, None].repeat(1, 4))
    pruned, _ = prune_channels(model, 0.5)
    assert torch.equal(pruned[0].weight[:, 0], torch.arange(8, 16, dtype=torch.float32))


def test_ratios_count_against_the_original_channels() -> None:
    model = examples.wide_cnn(64).eval()
    original = channel_counts(model)
    step1, _ = prune_channels(model, 0.25, original=original)
    step2, _ = prune_channels(step1, 0.5, original=original)
    assert channel_counts(step1)["0"] == 48 and channel_counts(step2)["0"] == 32


def test_bad_arguments() -> None:
    with pytest.raises(UsageError, match="criterion 'l3'"):
        prune_channels(examples.mlp(), 0.5, criterion="l3")
    with pytest.raises(UsageError, match=r"nn\.Sequential"):
        prune_channels(torch.nn.Linear(2, 2), 0.5)
