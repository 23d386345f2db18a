"""A generated, labelled audio corpus for answering machine detection.

``load_or_build(dir, n, seed, split)`` gives :class:`carriers.base.AudioClip`
values with ``label`` set (the simulator's called parties play them);
``false_positive_rate(clips, profile)`` measures people called machines.
"""

from sim.corpus.evaluate import classify, evaluate, false_positive_rate
from sim.corpus.sources import MissingTool, check_tools
from sim.corpus.store import build, load_or_build, read_labels

__all__ = [
    "MissingTool",
    "build",
    "check_tools",
    "classify",
    "evaluate",
    "false_positive_rate",
    "load_or_build",
    "read_labels",
]
