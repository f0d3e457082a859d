"""Random identifiers made without a system call each: request ids, rate-limit log members.

`os.urandom` asks the kernel every time (a getrandom system call: 6 % of a worker's time
when it answers a constant response). These come from a generator of this module, seeded
from `os.urandom` when the process starts and again in every forked child: unique enough
for identifiers, never used as secrets.
"""

from __future__ import annotations

import os
import random

_generator = random.Random()  # seeded from os.urandom
os.register_at_fork(after_in_child=_generator.seed)
_bits = _generator.getrandbits


def random_hex32() -> str:
    """128 random bits as 32 hex digits."""
    return f"{_bits(128):032x}"


def random_hex16() -> str:
    """64 random bits as 16 hex digits."""
    return f"{_bits(64):016x}"
