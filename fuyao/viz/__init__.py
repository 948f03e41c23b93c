"""Top-down rendering of episodes to frames, GIF and MP4 (`render`), and static map drawings (`maps`).

`viz` reads from the core (`roads`, `sim`); nothing in the core imports it.
"""

from fuyao.viz.render import (
    Recording,
    record_episode,
    recording_from_states,
    render_episode,
    render_frames,
    write_video,
)

__all__ = [
    "Recording",
    "record_episode",
    "recording_from_states",
    "render_episode",
    "render_frames",
    "write_video",
]
