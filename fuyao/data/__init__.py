"""Logged scenarios and recordings: the scenario format (`scenario`), importers of real logs (`importers`), maps
from logs (`logmap`) and rollout recording (`record`). Host-side (numpy, pyarrow); see `docs/data.md`."""
