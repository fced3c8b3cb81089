"""The training loop: NaN names its epoch and keeps the checkpoint; resume continues exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (CPU PyTorch) is not installed")

from edgekit.core.errors import TrainingDivergedError, UsageError  # noqa: E402
from edgekit.train.data import TrainData  # noqa: E402
from edgekit.train.loop import STOP_AFTER_EPOCH_ENV, Checkpoints, FitOptions, fit  # noqa: E402


def data() -> TrainData:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 6)).astype(np.float32)
    return TrainData({"input": x}, (x[:, 0] > 0).astype(np.int64), "synthetic")


def model() -> object:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def test_nan_loss_names_the_epoch_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    checkpoints = Checkpoints(tmp_path)
    blow_up_from = 3

    def loss_fn(m: object, batch: list[object], labels: object, index: object) -> object:
        loss = torch.nn.functional.cross_entropy(m(*batch), labels)  # type: ignore[operator]
        return loss * float("nan") if epoch_seen[-1] >= blow_up_from else loss

    epoch_seen = [1]

    def track(event: dict[str, object]) -> None:
        epoch_seen.append(int(event["epoch"]) + 1)  # type: ignore[call-overload]

    with pytest.raises(TrainingDivergedError, match=r"loss became nan in epoch 3.*epoch 2") as info:
        fit(
            model(),
            "float",
            data(),
            ["input"],
            FitOptions(5),
            loss_fn=loss_fn,
            checkpoints=checkpoints,
            emit=track,
        )
    assert info.value.data["epoch"] == 3
    assert checkpoints.load("float")["epoch"] == 2  # type: ignore[index]


def test_resume_continues_exactly_where_the_interrupted_run_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = FitOptions(4, 1e-2, 16, seed=3)
    _, straight = fit(model(), "float", data(), ["input"], options)
    monkeypatch.setenv(STOP_AFTER_EPOCH_ENV, "2")
    with pytest.raises(KeyboardInterrupt):
        fit(model(), "float", data(), ["input"], options, checkpoints=Checkpoints(tmp_path))
    monkeypatch.delenv(STOP_AFTER_EPOCH_ENV)
    _, resumed = fit(model(), "float", data(), ["input"], options, checkpoints=Checkpoints(tmp_path))
    assert [e["loss"] for e in resumed] == [e["loss"] for e in straight]


def test_options_are_checked() -> None:
    with pytest.raises(UsageError, match="learning_rate > 0"):
        FitOptions(1, learning_rate=0.0)
    with pytest.raises(UsageError, match="augment 'flip'"):
        FitOptions(1, augment="flip")
