"""Provider names and delegate options checked on the host (edgekit/core/accelerators.py): the
host's table of providers is the agent's, onnxruntime's own names are the same provider, and
delegate options go to an external delegate only, so a bad value is exit 2 before any device."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgekit_agent.runtimes import providers as agent_providers
from edgekit_agent.runtimes import tflite as agent_tflite

from edgekit.core.accelerators import (
    BUILTIN_DELEGATES,
    PROVIDER_NAMES,
    AcceleratorRequest,
    check_provider_names,
    parse_provider_options,
    request_from_tables,
)
from edgekit.core.errors import ACCELERATOR_MISSING_ERROR_TYPES, CELL_ERROR_TYPES, ConfigError, UsageError
from tests.fake_board import fake_profile


def test_the_host_knows_the_agents_providers_under_the_same_names() -> None:
    agent = {p.name: p.ep_name for p in agent_providers.PROVIDERS.values()}
    assert agent == PROVIDER_NAMES
    assert BUILTIN_DELEGATES == agent_tflite.BUILTIN_DELEGATES


@pytest.mark.parametrize("name", ["foo", "azure", "AzureExecutionProvider", "GgmlExecutionProvider", "cu da"])
def test_an_unknown_provider_is_a_usage_error_listing_the_known(name: str) -> None:
    with pytest.raises(UsageError, match=r"unknown execution provider.*cpu, cuda, tensorrt, openvino, ggml"):
        check_provider_names([name])


def test_a_near_miss_gets_a_hint() -> None:
    with pytest.raises(UsageError, match="did you mean 'ggml'"):
        check_provider_names(["GgmlExecutionProvider"])
    with pytest.raises(UsageError, match="did you mean 'tensorrt'"):
        check_provider_names(["tensort"])


def test_onnxruntime_names_are_the_same_provider() -> None:
    assert check_provider_names(["CUDAExecutionProvider", "cpu", "ggml"]) == ("cuda", "cpu", "ggml")
    for pair in (["cuda", "CUDAExecutionProvider"], ["cpu", "cpuexecutionprovider"]):
        with pytest.raises(UsageError, match="given twice"):
            check_provider_names(pair)
    assert parse_provider_options(["CUDAExecutionProvider.device_id=0"], ("cuda",)) == {
        "cuda": {"device_id": "0"}
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (".x=1", "no provider before the '.'"),
        ("ep.context_enable=1", "a key with a '.' is PROVIDER.KEY"),
    ],
)
def test_a_bad_provider_prefix_is_named(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_provider_options([item], ("tensorrt",))


@pytest.mark.parametrize(
    "request_",
    [
        AcceleratorRequest(delegate="xnnpack", delegate_options=("num_threads=2",)),
        AcceleratorRequest(delegate="default", delegate_options=("a=1",)),
        AcceleratorRequest(delegate="none", delegate_options=("a=1",)),
    ],
)
def test_options_of_a_builtin_delegate_are_a_usage_error(request_: AcceleratorRequest) -> None:
    with pytest.raises(UsageError, match="apply to an external delegate"):
        request_.validate()


def test_tables_with_options_and_no_delegate_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not to 'default'"):
        request_from_tables(delegate_options={"num_threads": "2"})
    # an external delegate takes them
    request = request_from_tables(delegate="edgetpu", delegate_options={"device": "usb:0"})
    assert request.delegate_options == ("device=usb:0",)


@pytest.mark.parametrize(
    ("accelerators", "message"),
    [
        ({"providers": ["tensorrt", "foo"]}, "unknown execution provider"),
        ({"providers": []}, "names no provider"),
        ({"providers": ["cpu", "CPUExecutionProvider"]}, "cpu: given twice (the order of providers"),
        ({"delegate": "xnnpack", "delegate_options": {"num_threads": "2"}}, "not to 'xnnpack'"),
        ({"delegate_options": {"num_threads": "2"}}, "not to 'default'"),
        ({"providers": ["cpu"], "provider_options": {"bogus": {"a": "1"}}}, "unknown execution provider"),
    ],
)
def test_a_profile_with_a_bad_accelerator_value_does_not_load(
    tmp_path: Path, accelerators: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match="accelerators") as info:
        fake_profile(tmp_path, [], {}, accelerators)
    assert message in str(info.value)
    assert "--provider " not in str(info.value)


def test_a_profile_takes_onnxruntime_names_for_providers_and_their_options(tmp_path: Path) -> None:
    chosen = fake_profile(
        tmp_path,
        [],
        {},
        {
            "providers": ["TensorrtExecutionProvider", "cpu"],
            "provider_options": {"TensorrtExecutionProvider": {"a": "1"}},
        },
    )
    assert chosen.accelerators.providers == ("tensorrt", "cpu")
    assert dict(chosen.accelerators.provider_options) == {"tensorrt": {"a": "1"}}


def test_a_fleet_cell_the_agent_refuses_fails_that_cell_not_the_board() -> None:
    """edgekit.measure.fleet fails only the cell on these agent replies (the agent still answers)."""
    assert ACCELERATOR_MISSING_ERROR_TYPES | {"BadRequest"} <= CELL_ERROR_TYPES
