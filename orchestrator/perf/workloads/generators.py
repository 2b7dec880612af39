"""A generator pipeline: produce, filter, map, window, group and reduce lazily."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

NAME = "generators"
N = 100_000


def numbers(n: int) -> Iterator[int]:
    i = 0
    while i < n:
        yield i
        i += 1


def not_multiple_of(it: Iterable[int], k: int) -> Iterator[int]:
    return (x for x in it if x % k)


def squares(it: Iterable[int]) -> Iterator[int]:
    for x in it:
        yield x * x % 10_007


def windows(it: Iterable[int], size: int) -> Iterator[tuple[int, ...]]:
    buf: list[int] = []
    for x in it:
        buf.append(x)
        if len(buf) == size:
            yield tuple(buf)
            del buf[0]


def bench() -> object:
    pipe = windows(squares(not_multiple_of(numbers(N), 3)), 4)
    acc = 0
    for key, group in itertools.groupby(pipe, key=lambda w: w[0] % 5):
        acc += key * sum(max(w) - min(w) for w in group)
    acc += sum(x for x in (y * 2 for y in range(N)) if x % 7 == 0)
    return acc
