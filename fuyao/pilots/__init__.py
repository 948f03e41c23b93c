"""Things that drive: the rule-based pilot, learned policies, checkpoints loaded as pilots."""

from fuyao.pilots.base import Pilot
from fuyao.pilots.learned import CheckpointError, LearnedPilot, load
from fuyao.pilots.rule_based import RuleBasedPilot

__all__ = ["CheckpointError", "LearnedPilot", "Pilot", "RuleBasedPilot", "load"]
