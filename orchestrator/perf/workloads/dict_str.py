"""Dict- and str-heavy code: tokenising, counting, formatting, joining, set algebra."""

from __future__ import annotations

NAME = "dict_str"
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi",
         "chi", "psi", "omega"]
TEXT = " ".join(f"{WORDS[(i * 7) % len(WORDS)]}{i % 13}" for i in range(12_000))
REPEAT = 12


def bench() -> object:
    return [_once(TEXT[shift:]) for shift in range(REPEAT)]


def _once(text: str) -> object:
    counts: dict[str, int] = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    by_initial: dict[str, list[str]] = {}
    for word in counts:
        by_initial.setdefault(word[0], []).append(word)
    lines = [f"{k}: {', '.join(sorted(v))}" for k, v in sorted(by_initial.items())]
    report = "\n".join(lines).upper().replace("A", "4")
    table = {w.capitalize(): len(w) * n for w, n in counts.items()}
    evens = {w for w, n in counts.items() if n % 2 == 0}
    odds = set(counts) - evens
    keys = "|".join(k.lower() for k in table if k[1:].islower())
    encoded = "".join(chr((ord(c) + 1) % 0x7F or 1) for c in text[:20_000])
    return (len(report), sum(table.values()), len(evens ^ odds), len(keys),
            encoded.count("b"), text.count("eta"))
