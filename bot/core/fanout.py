"""The order in which one lead fill fans out to its followers.

Followers of one lead fill are sent one after another, and later ones meet a book the earlier ones
already took from: a fixed send order would make the same follower pay the most every time
(bot.aum.slippage reports whether anyone is still systematically last).
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def fanout_order(followers: Sequence[str], seed_or_rng: int | str | bytes | random.Random) -> list[str]:
    """A permutation of `followers` for one lead fill. Seeding with the lead trade id makes a replay
    of the same fill (after a restart) send in the same order, while different fills get
    independent orders."""
    rng = seed_or_rng if isinstance(seed_or_rng, random.Random) else random.Random(seed_or_rng)
    order = list(followers)
    rng.shuffle(order)
    return order
