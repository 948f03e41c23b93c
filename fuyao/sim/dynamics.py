"""Vehicle motion: the kinematic bicycle in the lane's Frenet frame (reference point at the vehicle's centre,
as highway-env's), one explicit Euler step."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fuyao.sim.geometry import wrap_angle
from fuyao.sim.state import Vehicles

PHYSICAL_MAX_SPEED = 45.0  # m/s


@dataclass(frozen=True)
class Motion:
    """The vehicles after one tick of motion, in the frame of the lane they started the tick on, `[W, N]`."""

    s: torch.Tensor  # m
    d: torch.Tensor  # m
    psi: torch.Tensor  # rad, relative to the lane
    speed: torch.Tensor  # m/s
    yaw_rate: torch.Tensor  # rad/s


def limit_steer(
    steer, prev_steer, speed, length, max_lat_accel: float | None, max_steer_rate: float | None, dt: float
) -> torch.Tensor:
    """The wheel angle `[W, N]` rad a car can hold: within `max_steer_rate` rad/s of `prev_steer` (the wheel turns
    at a finite rate), then no more than tyre friction allows, lateral acceleration `speed x yaw rate = speed^2
    sin(beta) / (L / 2)` at most `max_lat_accel` m/s^2 (so the slip `beta` at most `asin(max_lat_accel L / (2
    speed^2))`, and `tan(steer) = 2 tan(beta)`). None leaves that bound off (highway-env's controllers, which the
    `highway-v0`, `merge-v0` and `exit-v0` presets mirror, have neither: at 30 m/s their lane change peaks near
    3 g)."""
    if max_steer_rate is not None:
        step = max_steer_rate * dt
        steer = torch.minimum(torch.maximum(steer, prev_steer - step), prev_steer + step)
    if max_lat_accel is not None:
        x = (max_lat_accel * 0.5 * length / (speed * speed).clamp(min=1e-6)).clamp(max=0.999)
        most = torch.atan(2.0 * x / torch.sqrt(1.0 - x * x))  # tan(asin(x)) = x / sqrt(1 - x^2), kept finite
        steer = torch.minimum(torch.maximum(steer, -most), most)
    return steer


def bicycle_step(v: Vehicles, accel, steer, kappa, live, dt: float) -> Motion:
    """Kinematic bicycle: slip angle `beta = atan(tan(steer) / 2)`, speed along the heading `psi + beta`, yaw
    rate `v sin(beta) / (L / 2)`; the lane's curvature `kappa [W, N]` turns the Frenet frame under the car.
    `accel` m/s^2 and `steer` rad `[W, N]`; vehicles not `live` stay where they are."""
    beta = torch.atan(0.5 * torch.tan(steer))
    heading = v.psi + beta
    s_dot = v.speed * torch.cos(heading) / (1.0 - kappa * v.d).clamp(min=0.1)
    d_dot = v.speed * torch.sin(heading)
    yaw_rate = v.speed * torch.sin(beta) / (0.5 * v.length)
    psi_dot = yaw_rate - kappa * s_dot
    speed = torch.minimum((v.speed + accel * dt).clamp(min=0.0), torch.full_like(v.speed, PHYSICAL_MAX_SPEED))
    speed = torch.where(live, speed, 0.0)
    s = torch.where(live, v.s + s_dot * dt, v.s)
    d = torch.where(live, v.d + d_dot * dt, v.d)
    psi = torch.where(live, wrap_angle(v.psi + psi_dot * dt), v.psi)
    return Motion(s=s, d=d, psi=psi, speed=speed, yaw_rate=yaw_rate)


__all__ = ["Motion", "PHYSICAL_MAX_SPEED", "bicycle_step", "limit_steer"]
