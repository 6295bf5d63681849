"""Throughput and MFU: the model's compute dtype picks the peak it is measured against."""

import types

import jax
import pytest

from bert_jax.trainer import report as train_report


@pytest.fixture
def h100(monkeypatch):
    chip = types.SimpleNamespace(device_kind="NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(jax, "devices", lambda *args: [chip])
    monkeypatch.setattr(jax, "device_count", lambda *args: 1)
    clock = iter([0.0, 1.0])  # start at 0 s, measure at 1 s
    monkeypatch.setattr(train_report.time, "perf_counter", lambda: next(clock))


@pytest.mark.parametrize("dtype, peak", [("float32", 495e12), ("bfloat16", 989e12)])
def test_mfu_is_against_the_peak_of_the_compute_dtype(h100, dtype, peak):
    throughput = train_report.Throughput(dtype)
    throughput.add(0, 1e12, 8, 8 * 128)  # the first step read starts the clock, uncounted
    for step in range(1, 11):  # 10 steps of 1 TFLOP in one second
        throughput.add(step, 1e12, 8, 8 * 128)
    out = throughput.measure(10)
    assert out["tflops_per_device"] == pytest.approx(10.0)
    assert out["sequences_per_second"] == pytest.approx(80.0)
    assert out["tokens_per_second"] == pytest.approx(80.0 * 128)
    assert out["mfu"] == pytest.approx(10e12 / peak)
