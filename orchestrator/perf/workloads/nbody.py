"""N-body: five planets integrated with a symplectic Euler step (float arithmetic, loops)."""

from __future__ import annotations

import math

NAME = "nbody"
STEPS = 20_000
DAYS_PER_YEAR = 365.24
SOLAR_MASS = 4 * math.pi * math.pi

Body = list[float]  # x, y, z, vx, vy, vz, mass


def _system() -> list[Body]:
    d, m = DAYS_PER_YEAR, SOLAR_MASS
    bodies = [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, m],
        [4.84143144246472090e00, -1.16032004402742839e00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * d, 7.69901118419740425e-03 * d, -6.90460016972063023e-05 * d,
         9.54791938424326609e-04 * m],
        [8.34336671824457987e00, 4.12479856412430479e00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * d, 4.99852801234917238e-03 * d, 2.30417297573763929e-05 * d,
         2.85885980666130812e-04 * m],
        [1.28943695621391310e01, -1.51111514016986312e01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * d, 2.37847173959480950e-03 * d, -2.96589568540237556e-05 * d,
         4.36624404335156298e-05 * m],
        [1.53796971148509165e01, -2.59193146099879641e01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * d, 1.62824170038242295e-03 * d, -9.51592254519715870e-05 * d,
         5.15138902046611451e-05 * m],
    ]
    px = py = pz = 0.0
    for b in bodies:
        px += b[3] * b[6]
        py += b[4] * b[6]
        pz += b[5] * b[6]
    sun = bodies[0]
    sun[3], sun[4], sun[5] = -px / m, -py / m, -pz / m
    return bodies


def _energy(bodies: list[Body]) -> float:
    e = 0.0
    for i, a in enumerate(bodies):
        e += 0.5 * a[6] * (a[3] * a[3] + a[4] * a[4] + a[5] * a[5])
        for b in bodies[i + 1:]:
            dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
            e -= a[6] * b[6] / math.sqrt(dx * dx + dy * dy + dz * dz)
    return e


def _advance(bodies: list[Body], dt: float, steps: int) -> None:
    pairs = [(bodies[i], bodies[j]) for i in range(len(bodies)) for j in range(i + 1, len(bodies))]
    for _ in range(steps):
        for a, b in pairs:
            dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
            d2 = dx * dx + dy * dy + dz * dz
            mag = dt / (d2 * math.sqrt(d2))
            bm, am = b[6] * mag, a[6] * mag
            a[3] -= dx * bm
            a[4] -= dy * bm
            a[5] -= dz * bm
            b[3] += dx * am
            b[4] += dy * am
            b[5] += dz * am
        for body in bodies:
            body[0] += dt * body[3]
            body[1] += dt * body[4]
            body[2] += dt * body[5]


def bench() -> object:
    bodies = _system()
    _advance(bodies, 0.01, STEPS)
    return round(_energy(bodies), 9)
