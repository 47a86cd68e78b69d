"""Share link ids as the generator makes them: the link is the only key to a snapshot, so its
id must be unguessable: unique, of one shape, and with nothing in it a guesser could use.

The checks are statistical, at thresholds a fair generator misses about once in a billion
runs per check, so they never flake; a generator with structure (a counter, a timestamp, a
user id, a skewed alphabet) fails them by orders of magnitude.
"""

from __future__ import annotations

import base64
import collections
import itertools
import math
import string
from collections.abc import Iterable
from statistics import NormalDist

import pytest

from graphql_api.storage.checks import LINK_ID_BYTES, is_link_id
from graphql_api.storage.shares import new_link_id

COUNT = 10_000
ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
# Per check, the chance that a fair generator fails it.
FALSE_ALARM = 1e-9


@pytest.fixture(scope="module")
def ids() -> list[str]:
    return [new_link_id() for _ in range(COUNT)]


def chi_square(counts: Iterable[int], *, categories: int, total: int) -> float:
    expected = total / categories
    observed = list(counts)
    missing = categories - len(observed)
    return sum((count - expected) ** 2 / expected for count in observed) + missing * expected


def chi_square_bound(degrees: int) -> float:
    """The chi-square value a fair draw exceeds with probability FALSE_ALARM (Wilson and
    Hilferty's approximation, close to the exact value at these degrees of freedom)."""
    z = NormalDist().inv_cdf(1 - FALSE_ALARM)
    scale = 2 / (9 * degrees)
    return degrees * (1 - scale + z * math.sqrt(scale)) ** 3


def test_ten_thousand_ids_are_unique_of_one_shape_and_carry_192_random_bits(
    ids: list[str],
) -> None:
    assert len(set(ids)) == COUNT
    assert all(len(link_id) == 32 and set(link_id) <= ALPHABET for link_id in ids)
    assert all(is_link_id(link_id) for link_id in ids)
    # Unpadded base64url of LINK_ID_BYTES random bytes: at least the 128 bits.
    assert LINK_ID_BYTES * 8 >= 128
    assert all(len(base64.urlsafe_b64decode(link_id)) == LINK_ID_BYTES for link_id in ids)


def test_every_position_draws_evenly_from_the_whole_alphabet(ids: list[str]) -> None:
    """A counter, a timestamp or an id inside would fix or skew some positions."""
    bound = chi_square_bound(len(ALPHABET) - 1)
    for position in range(32):
        counts = collections.Counter(link_id[position] for link_id in ids)
        statistic = chi_square(counts.values(), categories=len(ALPHABET), total=COUNT)
        assert statistic < bound, (position, statistic, counts.most_common(3))


def test_the_bytes_and_the_bits_are_even(ids: list[str]) -> None:
    raw = b"".join(base64.urlsafe_b64decode(link_id) for link_id in ids)
    byte_counts = collections.Counter(raw)
    assert chi_square(byte_counts.values(), categories=256, total=len(raw)) < chi_square_bound(255)
    bound = chi_square_bound(1)
    for bit in range(8):
        ones = sum(count for value, count in byte_counts.items() if value >> bit & 1)
        statistic = chi_square([ones, len(raw) - ones], categories=2, total=len(raw))
        assert statistic < bound, (bit, ones)


def test_ids_made_one_after_another_share_no_prefix_beyond_chance(ids: list[str]) -> None:
    """Neighbours in the order made and in sorted order: a sequence or a time would make
    them share leading characters."""

    def common(a: str, b: str) -> int:
        return next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))

    consecutive = [common(a, b) for a, b in itertools.pairwise(ids)]
    # Two fair ids share a first character 1 time in 64: about 156 of 9,999 pairs.
    assert sum(1 for length in consecutive if length >= 1) < 2 * COUNT / 64
    assert max(consecutive) <= 5
    ordered = sorted(ids)
    # Among 10,000 fair ids the longest shared prefix is about 4 characters (5 * 10^7 pairs,
    # 64^-4 each); 8 is 1 chance in 5 million.
    assert max(common(a, b) for a, b in itertools.pairwise(ordered)) < 8
