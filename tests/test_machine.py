"""What `auto` resolves to is the machine's choice: each rule is tested here for every kind
of machine (a CPU with and without bf16 instructions, with and without CUDA), whatever this
one is, and the report header names the machine this suite ran on."""

from __future__ import annotations

import pytest
import torch

from aevae import machine
from aevae.errors import ConfigError

WITH_BF16 = machine.Cpu("a CPU with AVX512-BF16", frozenset({"avx2", "avx512f", "avx512_bf16"}))
WITH_AMX = machine.Cpu("a CPU with AMX", frozenset({"avx2", "avx512f", "amx_bf16", "amx_tile"}))
AVX2_ONLY = machine.Cpu("a CPU with AVX2 only", frozenset({"avx2", "fma"}))
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("found,bf16", [(WITH_BF16, True), (WITH_AMX, True), (AVX2_ONLY, False)])
def test_auto_precision_is_bf16_on_a_cpu_with_bf16_instructions_and_fp32_on_cuda(monkeypatch, found, bf16):
    monkeypatch.setattr(machine, "cpu", lambda: found)
    assert machine.uses_bf16("auto", CPU) is bf16
    assert machine.uses_bf16("auto", CUDA) is False
    assert machine.uses_bf16("bf16", CPU) and machine.uses_bf16("bf16", CUDA)  # asked for: as asked
    assert not machine.uses_bf16("fp32", CPU)


def test_numerics_keep_a_fixed_setting_and_leave_auto_at_the_reference_for_the_measurement():
    """`Numerics.of` resolves the machine's flags only; what 'auto' memory format, transposed
    convolution and compile become is measured (aevae.training.measured, tests/test_measured.py)."""
    from aevae.config import TrainConfig
    from aevae.numerics import Numerics

    auto = Numerics.of(TrainConfig(arch="conv", device="cpu"))
    assert (auto.channels_last, auto.fold, auto.compile) == (False, False, False)
    fixed = Numerics.of(TrainConfig(arch="conv", device="cpu", memory_format="channels_last",
                                    transposed_conv="fold", compile="on"))
    assert (fixed.channels_last, fixed.fold, fixed.compile) == (True, True, True)


@pytest.mark.parametrize("cores,cuda,workers", [(2, False, 2), (64, False, machine.AUTO_MAX_WORKERS),
                                                (1, False, 1), (16, True, 1)])
def test_auto_workers_is_a_worker_per_core_on_cpu_and_one_with_cuda(monkeypatch, cores, cuda, workers):
    monkeypatch.setattr(machine, "usable_cores", lambda: cores)
    monkeypatch.setattr(machine, "cuda_available", lambda: cuda)
    assert machine.auto_workers() == workers


def test_auto_device_is_cuda_where_present_and_asking_for_a_missing_one_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(machine, "cuda_available", lambda: False)
    assert machine.pick_device("auto") == CPU
    with pytest.raises(ConfigError, match="no CUDA device is available: use --device cpu"):
        machine.pick_device("cuda")
    monkeypatch.setattr(machine, "cuda_available", lambda: True)
    assert machine.pick_device("auto") == CUDA


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16
bugs\t\t: sysret_ss_attrs

processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16
"""


def test_the_cpu_is_read_from_cpuinfo():
    found = machine.parse_cpuinfo(CPUINFO)
    assert found.model == "AMD EPYC 9R14"
    assert found.named_flags == ["avx2", "avx512f", "avx512_bf16"] and found.has_bf16
    assert not machine.parse_cpuinfo(CPUINFO.replace(" avx512_bf16", "")).has_bf16
    assert machine.parse_cpuinfo("").model  # platform's word for it where there is no cpuinfo


def test_the_header_names_the_machine_and_each_auto_choice():
    lines = machine.header_lines()
    assert lines[0].startswith(f"machine: {machine.cpu().model}, {machine.usable_cores()} usable cores")
    assert f"torch {torch.__version__}" in lines[1] and "oneDNN" in lines[1]
    precision = "bf16" if machine.uses_bf16("auto", machine.pick_device("auto")) else "fp32"
    assert f"precision {precision}" in lines[2] and f"workers {machine.auto_workers()}" in lines[2]
