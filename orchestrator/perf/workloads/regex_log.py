"""re: compile, search, findall and sub over synthetic log lines."""

from __future__ import annotations

import re

NAME = "regex_log"
LINES = [
    f"2026-11-{(i % 28) + 1:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z "
    f"{['INFO', 'WARN', 'ERROR', 'DEBUG'][i % 4]} req={i:06x} ip=10.{i % 256}.{(i * 3) % 256}.{i % 7} "
    f"path=/api/v{i % 3}/items/{i} took={i % 997}ms user=user{i % 50}@example.org"
    for i in range(4_000)
]
TEXT = "\n".join(LINES)
PATTERNS = [
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>[\d:]+)Z (?P<level>[A-Z]+)",
    r"ip=(\d+)\.(\d+)\.(\d+)\.(\d+)",
    r"took=(\d+)ms",
    r"[\w.+-]+@[\w-]+\.[\w.]+",
    r"/api/v(\d)/items/(\d+)",
]


def bench() -> object:
    compiled = [re.compile(p) for p in PATTERNS]
    total = 0
    for line in LINES:
        m = compiled[0].match(line)
        if m and m.group("level") == "ERROR":
            total += 1
        ip = compiled[1].search(line)
        if ip:
            total += int(ip.group(4))
    for pat in compiled[2:]:
        total += len(pat.findall(TEXT))
    total += len(compiled[2].sub(lambda m: f"took={int(m.group(1)) // 10}cs", TEXT))
    total += len(re.split(r"\s+", TEXT))
    return total
