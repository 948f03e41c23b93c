"""Adapters to the outside: Gymnasium single and vector environments (tensors, or NumPy through
`NumpyVectorEnv`), PettingZoo parallel environments (needs `fuyao[pettingzoo]`) and a Stable-Baselines3 VecEnv
(needs `fuyao[sb3]`). Importing registers nothing and imports neither optional library; call
`fuyao.envs.register()` to add the Gymnasium ids."""

from fuyao.envs.gym import (
    GYM_IDS,
    FuyaoEnv,
    FuyaoVectorEnv,
    make_env,
    make_vector_env,
    make_vector_env_for_gym,
    register,
)
from fuyao.envs.numpy_vector import NumpyVectorEnv


def make_parallel_env(preset_name: str = "highway", **kwargs):
    """A PettingZoo `FuyaoParallelEnv` from a named preset (see `fuyao.envs.pettingzoo.make_parallel_env`)."""
    from fuyao.envs.pettingzoo import make_parallel_env as make

    return make(preset_name, **kwargs)


def make_parallel_vector_env(preset_name: str = "highway", **kwargs):
    """A `FuyaoParallelVectorEnv`, `[W, C]` tensors (see `fuyao.envs.pettingzoo.make_parallel_vector_env`)."""
    from fuyao.envs.pettingzoo import make_parallel_vector_env as make

    return make(preset_name, **kwargs)


def make_sb3_vec_env(preset_name: str = "highway", **kwargs):
    """A Stable-Baselines3 `FuyaoSB3VecEnv` from a named preset (see `fuyao.envs.sb3.make_sb3_vec_env`)."""
    from fuyao.envs.sb3 import make_sb3_vec_env as make

    return make(preset_name, **kwargs)


__all__ = [
    "GYM_IDS",
    "NumpyVectorEnv",
    "FuyaoEnv",
    "FuyaoVectorEnv",
    "make_env",
    "make_parallel_env",
    "make_parallel_vector_env",
    "make_sb3_vec_env",
    "make_vector_env",
    "make_vector_env_for_gym",
    "register",
]
