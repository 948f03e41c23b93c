"""`fuyao bench sim`'s memory numbers: bytes of state per world and the largest batch that fits."""

import dataclasses

import torch

from fuyao.perf.bench_sim import measure_sim, memory_fit, tensor_bytes
from fuyao.presets import preset
from fuyao.sim.world import World

CPU = torch.device("cpu")


def test_state_bytes_per_world_count_every_field_and_grow_with_vehicles():
    small, big = preset("smoke", worlds=3, vehicles=4), preset("smoke", worlds=3, vehicles=8)
    state = World(small).reset(seed=0)
    manual = sum(
        t.numel() * t.element_size()
        for t in [getattr(state.vehicles, f.name) for f in dataclasses.fields(state.vehicles)]
        + [getattr(state.signals, f.name) for f in dataclasses.fields(state.signals)]
        + [getattr(state, f.name) for f in dataclasses.fields(state) if f.name not in ("vehicles", "signals", "replay")]
    )
    assert tensor_bytes(state) == manual
    world = World(small)
    fit = memory_fit(world, world.reset(0), CPU)
    assert fit["state_bytes_per_world"] == manual / 3
    big_world = World(big)
    assert memory_fit(big_world, big_world.reset(0), CPU)["state_bytes_per_world"] > fit["state_bytes_per_world"]
    assert fit["free_memory_source"] and "upper bound" in fit["bytes_per_world_basis"]
    assert fit["max_worlds_fit"] == int(fit["free_memory_bytes"] // fit["state_bytes_per_world"]) > 1000


def test_a_measured_peak_lowers_the_fit():
    world = World(preset("smoke", worlds=2))
    state = world.reset(0)
    plain = memory_fit(world, state, CPU)
    peak = tensor_bytes(world.road) + 2 * 50 * plain["state_bytes_per_world"]  # a decision needs 50x the state
    measured = memory_fit(world, state, CPU, peak_bytes=int(peak))
    assert measured["bytes_per_world"] == 50 * plain["state_bytes_per_world"]
    assert measured["max_worlds_fit"] < plain["max_worlds_fit"] / 40


def test_bench_sim_reports_memory():
    row = measure_sim(preset("smoke", worlds=2), CPU, decisions=1, repeats=1)
    assert row["state_bytes_per_world"] > 0 and row["max_worlds_fit"] > 0 and row["map_bank_bytes"] > 0


def test_gpu_check_steps_write_their_results_one_by_one(tmp_path):
    import json

    from fuyao.perf import gpu_check

    for step in ("env", "policy", "cpu_vs_cuda"):
        assert gpu_check.main([step, "--out", str(tmp_path), "--rehearsal"]) == 0
        data = json.loads((tmp_path / "gpu_check.json").read_text())
        assert step in data and "started" not in data[step] and data[step]["step_seconds"] >= 0.0
    assert set(data) == {"env", "policy", "cpu_vs_cuda"}
    if not torch.cuda.is_available():
        assert data["cpu_vs_cuda"]["skipped"] == "no CUDA device"
        assert data["policy"]["cuda_graph"].startswith("skipped")
