"""Top-down rendering: recording one world, drawing cars where they are, writing GIF and MP4."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from fuyao.pilots.rule_based import RuleBasedPilot
from fuyao.presets import preset
from fuyao.sim.geometry import vehicle_pose
from fuyao.sim.scene import scene
from fuyao.sim.world import World
from fuyao.viz.render import (
    BACKGROUND_CAR_RGB,
    CONTROLLED_CAR_RGB,
    CRASHED_CAR_RGB,
    ROAD_RGB,
    Recording,
    interpolate,
    record_episode,
    recording_from_states,
    render_episode,
    render_frames,
    write_video,
)


@pytest.fixture(scope="module")
def world() -> World:
    return World(preset("smoke", worlds=2))


@pytest.fixture(scope="module")
def episode(world: World) -> Recording:
    return record_episode(world, RuleBasedPilot(world), seed=0, world_index=1)


def has_colour(image: np.ndarray, rgb: tuple[int, int, int]) -> bool:
    return bool((image == np.array(rgb, dtype=np.uint8)).all(axis=-1).any())


def lane_xy_at(world: World, map_id: int, lane: int, s: float) -> np.ndarray:
    """Plain reference: walk the lane's centre polyline to arc length `s`."""
    road = world.road
    n = int(round(float(road.lane_length[map_id, lane] / road.lane_ds[map_id, lane]))) + 1
    points = road.lane_xy[map_id, lane, :n].numpy().astype(np.float64)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    return np.array([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])])


def test_recording_has_one_world_and_stops_at_episode_end(world: World, episode: Recording) -> None:
    # The same episode stepped by hand: it ends at the first decision where world 1 is done.
    pilot = RuleBasedPilot(world)
    state = world.reset(0)
    decisions = 0
    for _ in range(world.cfg.decisions_per_episode):
        result = world.step(state, pilot.act(world.observe(state), state))
        decisions += 1
        if result.world_done[1]:
            final = result.final_state
            break
        state = result.state
    else:
        raise AssertionError("the time limit did not end the episode")
    t, n = decisions + 1, world.cfg.vehicles
    assert episode.num_frames == t and episode.num_decisions == decisions
    assert decisions <= world.cfg.decisions_per_episode
    assert episode.xy.shape == (t, n, 2) and episode.xy.dtype == np.float32
    for name in ("yaw", "speed", "length", "width", "present", "controlled", "crashed"):
        assert getattr(episode, name).shape == (t, n), name
    assert episode.present.dtype == bool and episode.time_s.shape == (t,)
    assert episode.map_id == int(final.map_id[1])
    np.testing.assert_allclose(episode.time_s, np.arange(t) / world.cfg.decision_hz, atol=1e-5)
    # The last frame is world 1 of the final state (before auto-reset).
    v = final.vehicles
    xy, _ = vehicle_pose(world.road, final.map_id[1:], v.lane[1:], v.s[1:], v.d[1:], v.psi[1:])
    present = v.present[1].numpy()
    np.testing.assert_array_equal(episode.present[-1], present)
    np.testing.assert_allclose(episode.xy[-1][present], xy[0].numpy()[present], atol=1e-4)
    assert episode.controlled[0, 0] and not episode.controlled[0, 1:].any()


def test_max_decisions_cuts_the_episode(world: World) -> None:
    rec = record_episode(world, RuleBasedPilot(world), seed=0, max_decisions=3)
    assert rec.num_frames == 4
    np.testing.assert_allclose(rec.time_s, [0.0, 1.0, 2.0, 3.0], atol=1e-5)


def test_frames_per_decision_interpolates_between_decisions(world: World) -> None:
    pilot = RuleBasedPilot(world)
    plain = record_episode(world, pilot, seed=0, max_decisions=2)
    smooth = record_episode(world, pilot, seed=0, max_decisions=2, frames_per_decision=3)
    assert smooth.num_frames == 7 and smooth.num_decisions == 2
    np.testing.assert_allclose(smooth.xy[::3], plain.xy, atol=1e-5)
    np.testing.assert_allclose(smooth.time_s, np.arange(7) / 3.0, atol=1e-5)
    ego_x = smooth.xy[:, 0, 0]
    assert (np.diff(ego_x) > 0).all()  # the ego drives on: every in-between frame lies further along


def test_interpolation_turns_the_short_way_and_hides_reused_slots() -> None:
    def rec(xy, yaw) -> Recording:
        t, n = np.asarray(yaw).shape
        ones = np.ones((t, n), np.float32)
        return Recording(
            xy=np.asarray(xy, np.float32),
            yaw=np.asarray(yaw, np.float32),
            speed=ones,
            length=5 * ones,
            width=2 * ones,
            present=np.ones((t, n), bool),
            controlled=np.zeros((t, n), bool),
            crashed=np.zeros((t, n), bool),
            time_s=np.arange(t, dtype=np.float32),
            map_id=0,
        )

    # Slot 0 turns from just below +pi to just above -pi; slot 1 is a new car 500 m away one second later.
    out = interpolate(rec([[[0, 0], [0, 0]], [[10, 0], [500, 0]]], [[3.1, 0.0], [-3.1, 0.0]]), 2)
    assert out.num_frames == 3
    assert abs(abs(out.yaw[1, 0]) - np.pi) < 0.01  # through pi, not through 0
    np.testing.assert_allclose(out.xy[1, 0], [5.0, 0.0])
    assert out.present[1].tolist() == [True, False]
    assert out.present[2].tolist() == [True, True]


def test_recording_rejects_mismatched_shapes() -> None:
    t, n = 2, 3
    with pytest.raises(ValueError, match="Recording.yaw"):
        Recording(
            xy=np.zeros((t, n, 2), np.float32),
            yaw=np.zeros((t, n + 1), np.float32),
            speed=np.zeros((t, n), np.float32),
            length=np.zeros((t, n), np.float32),
            width=np.zeros((t, n), np.float32),
            present=np.zeros((t, n), bool),
            controlled=np.zeros((t, n), bool),
            crashed=np.zeros((t, n), bool),
            time_s=np.zeros(t, np.float32),
            map_id=0,
        )


def test_frames_follow_the_ego(world: World, episode: Recording) -> None:
    frames = render_frames(world.road, episode, width_px=320, height_px=160)
    assert frames.shape == (episode.num_frames, 160, 320, 3) and frames.dtype == np.uint8
    for t in range(episode.num_frames):
        colour = CRASHED_CAR_RGB if episode.crashed[t, 0] else CONTROLLED_CAR_RGB
        assert has_colour(frames[t, 75:85, 155:165], colour), f"frame {t}: no ego at the image centre"
        assert has_colour(frames[t], ROAD_RGB)


def test_whole_map_view_shows_every_map_and_the_ego(world: World, episode: Recording) -> None:
    frames = render_frames(world.road, episode, width_px=400, height_px=200, follow_ego=False)
    assert frames.shape == (episode.num_frames, 200, 400, 3)
    assert has_colour(frames[0], CONTROLLED_CAR_RGB) and has_colour(frames[0], ROAD_RGB)


def test_cars_appear_where_they_are_placed(world: World) -> None:
    cars = [
        dict(lane=0, s=50.0, speed=10.0, controlled=True),
        dict(lane=0, s=80.0, speed=10.0),
        dict(lane=1, s=60.0, speed=0.0, crashed=True),
    ]
    state = scene(world.road, world.cfg, [cars])
    rec = recording_from_states(world.road, [state])
    assert rec.num_frames == 1 and rec.present[0].sum() == 3
    mpp, width_px, height_px = 0.25, 400, 200
    frame = render_frames(world.road, rec, width_px, height_px, metres_per_px=mpp, label=False)[0]
    ego = lane_xy_at(world, 0, 0, 50.0)
    for lane, s, rgb in [(0, 50.0, CONTROLLED_CAR_RGB), (0, 80.0, BACKGROUND_CAR_RGB), (1, 60.0, CRASHED_CAR_RGB)]:
        dx, dy = (lane_xy_at(world, 0, lane, s) - ego) / mpp
        col, row = int(round(width_px / 2 + dx)), int(round(height_px / 2 - dy))
        assert has_colour(frame[row - 1 : row + 2, col - 1 : col + 2], rgb), (lane, s, row, col)
    # Nothing drawn where no car is: the road between the two lane-0 cars.
    dx = (lane_xy_at(world, 0, 0, 65.0) - ego)[0] / mpp
    between = frame[height_px // 2 - 2 : height_px // 2 + 3, int(width_px / 2 + dx) - 2 : int(width_px / 2 + dx) + 3]
    assert not has_colour(between, BACKGROUND_CAR_RGB) and not has_colour(between, CONTROLLED_CAR_RGB)


def moving_square(t: int, h: int, w: int) -> np.ndarray:
    frames = np.full((t, h, w, 3), 200, np.uint8)
    for k in range(t):
        frames[k, 5:12, 2 + 3 * k : 9 + 3 * k] = (255, 0, 0)
    return frames


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_video_round_trip(tmp_path, suffix: str) -> None:
    frames = moving_square(5, 31, 41)  # odd sides: the MP4 writer pads them
    path = write_video(frames, tmp_path / "sub" / f"episode{suffix}", fps=10)
    assert path.exists()
    back = iio.imread(path, index=None, plugin="pillow" if suffix == ".gif" else "FFMPEG")
    assert back.shape[0] == 5
    assert back.shape[1:3] == ((31, 41) if suffix == ".gif" else (32, 42))


def test_bad_suffix_names_it(tmp_path, world: World) -> None:
    with pytest.raises(ValueError, match=r"\.avi.*\.gif, \.mp4"):
        write_video(moving_square(2, 8, 8), tmp_path / "episode.avi")
    with pytest.raises(ValueError, match="none"):
        write_video(moving_square(2, 8, 8), tmp_path / "episode")
    with pytest.raises(ValueError, match=r"\.png"):  # before any simulation
        render_episode(world, RuleBasedPilot(world), tmp_path / "episode.png")


def test_render_episode_writes_a_video(tmp_path, world: World) -> None:
    summary = render_episode(world, RuleBasedPilot(world), tmp_path / "ep.gif", max_decisions=3, width_px=160)
    assert summary["frames"] == 4 and summary["decisions"] == 3
    assert summary["sim_s"] == pytest.approx(3.0)
    assert isinstance(summary["ego_crashed"], bool)
    assert iio.imread(summary["path"], index=None).shape[1:] == (300, 160, 3)
