"""Adapters to the outside: Gymnasium single and vector environments. Importing registers nothing; call
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

__all__ = [
    "GYM_IDS",
    "FuyaoEnv",
    "FuyaoVectorEnv",
    "make_env",
    "make_vector_env",
    "make_vector_env_for_gym",
    "register",
]
