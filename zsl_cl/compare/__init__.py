"""``zsl-cl compare``: the SAE strategy against Avalanche's baseline strategies on the same stream.

Every strategy runs on the same stream, seeds and labelled-data budget, and
starts from the same CNN backbone, trained once per seed on experience 0.
"""

from zsl_cl.compare.request import CompareRequest, parse_seeds, parse_strategies
from zsl_cl.compare.run import run_compare

__all__ = ["CompareRequest", "parse_seeds", "parse_strategies", "run_compare"]
