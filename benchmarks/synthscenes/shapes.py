"""The silhouettes of the SynthScenes categories, as data (see geometry.py).

Each icon uses colour roles ("main", "accent", "dark", ...) that categories.py maps to fixed colours;
"main" is the identity colour a `colour=` override replaces. Icons are drawn in design units, y down.
"""

from __future__ import annotations

import itertools
import math

from .geometry import Layer, Shape, crescent, ellipse, fill, line, make_shape, rect, rotate, rounded_rect, star


def _sun() -> list[Layer]:
    rays = []
    for k in range(12):
        a = math.radians(k * 30)
        b0, b1 = a - math.radians(9), a + math.radians(9)
        rays.append([(50 + 30 * math.cos(b0), 50 + 30 * math.sin(b0)), (50 + 50 * math.cos(a), 50 + 50 * math.sin(a)),
                     (50 + 30 * math.cos(b1), 50 + 30 * math.sin(b1))])
    return [fill("accent", *rays), fill("main", ellipse(50, 50, 32))]


def _moon() -> list[Layer]:
    return [fill("main", rotate(crescent((50, 50), 50, (74, 40), 42), -10, 50, 50))]


def _star() -> list[Layer]:
    return [fill("main", star(50, 50, 50, 21))]


def _cloud() -> list[Layer]:
    return [fill("main", ellipse(28, 58, 22, 18), ellipse(52, 42, 28, 26), ellipse(78, 55, 22, 19),
                 rounded_rect(8, 50, 98, 76, 12))]


def _airplane() -> list[Layer]:
    return [
        fill("accent", [(4, 42), (6, 8), (20, 8), (32, 40)]),
        fill("main", rounded_rect(0, 34, 100, 54, 10), [(86, 34), (100, 42), (100, 46), (86, 54)]),
        fill("accent", [(40, 46), (66, 46), (48, 82), (36, 82)]),
        fill("dark", *(ellipse(x, 41, 2.6) for x in range(30, 88, 8))),
    ]


def _kite() -> list[Layer]:
    top, right, bottom, left, mid = (50, 0), (86, 34), (50, 96), (14, 34), (50, 34)
    return [
        line("dark", 0.03, [(50, 96), (42, 108), (56, 120), (44, 132), (54, 144)]),
        fill("accent", [(44, 108), (36, 102), (36, 114)], [(44, 108), (52, 102), (52, 114)],
             [(46, 132), (38, 126), (38, 138)], [(46, 132), (54, 126), (54, 138)]),
        fill("main", [top, right, mid], [left, mid, bottom]),
        fill("accent", [top, mid, left], [mid, right, bottom]),
        line("dark", 0.025, [top, bottom], [left, right]),
    ]


def _bird() -> list[Layer]:
    return [
        line("beak", 0.04, [(46, 74), (44, 90)], [(58, 74), (58, 90)]),
        fill("main", [(22, 50), (0, 34), (4, 58)], ellipse(50, 56, 34, 22), ellipse(80, 34, 17)),
        fill("accent", ellipse(46, 54, 20, 11)),
        fill("beak", [(94, 28), (112, 34), (94, 40)]),
        fill("dark", ellipse(84, 30, 3.5)),
    ]


def _butterfly() -> list[Layer]:
    wings = [rotate(ellipse(28, 32, 26, 30), -20, 50, 50), rotate(ellipse(72, 32, 26, 30), 20, 50, 50),
             ellipse(32, 74, 18, 20), ellipse(68, 74, 18, 20)]
    return [
        fill("main", *wings),
        fill("accent", ellipse(26, 30, 9), ellipse(74, 30, 9), ellipse(32, 76, 6), ellipse(68, 76, 6)),
        fill("dark", ellipse(50, 52, 5, 36)),
        line("dark", 0.02, [(48, 20), (40, 0)], [(52, 20), (60, 0)]),
    ]


def _tree() -> list[Layer]:
    return [
        fill("accent", [(42, 100), (45, 55), (55, 55), (58, 100)]),
        fill("main", ellipse(50, 32, 32), ellipse(26, 52, 22), ellipse(74, 52, 22), ellipse(50, 58, 24)),
    ]


def _flower() -> list[Layer]:
    petals = [ellipse(50 + 18 * math.cos(math.radians(a)), 28 + 18 * math.sin(math.radians(a)), 13)
              for a in range(0, 360, 60)]
    return [
        line("stem", 0.06, [(50, 40), (50, 100)]),
        fill("stem", rotate(ellipse(62, 72, 13, 5), -30, 62, 72)),
        fill("main", *petals),
        fill("accent", ellipse(50, 28, 11)),
    ]


def _mushroom() -> list[Layer]:
    cap = ellipse(50, 50, 50, 46, start=180, end=360) + [(100, 50), (0, 50)]
    return [
        fill("accent", rounded_rect(34, 40, 66, 100, 8)),
        fill("main", cap),
        fill("accent", ellipse(30, 30, 7), ellipse(55, 18, 8), ellipse(76, 36, 6), ellipse(48, 40, 5)),
    ]


def _house() -> list[Layer]:
    return [
        fill("roof", rect(68, 8, 80, 30)),
        fill("main", rect(10, 44, 90, 100)),
        fill("roof", [(0, 48), (50, 4), (100, 48)]),
        fill("dark", rect(42, 66, 58, 100)),
        fill("window", rect(18, 56, 34, 72), rect(66, 56, 82, 72)),
        line("dark", 0.02, [(26, 56), (26, 72)], [(18, 64), (34, 64)], [(74, 56), (74, 72)], [(66, 64), (82, 64)]),
    ]


def _car() -> list[Layer]:
    return [
        fill("main", rounded_rect(0, 36, 100, 70, 8), [(20, 38), (32, 12), (70, 12), (84, 38)]),
        fill("window", [(29, 36), (36, 17), (49, 17), (49, 36)], [(53, 36), (53, 17), (66, 17), (76, 36)]),
        fill("light", rect(94, 42, 100, 50)),
        fill("dark", ellipse(24, 70, 13), ellipse(76, 70, 13)),
        fill("hub", ellipse(24, 70, 5), ellipse(76, 70, 5)),
    ]


def _bicycle() -> list[Layer]:
    rear, front, crank, seat, head = (20, 70), (80, 70), (46, 70), (40, 36), (72, 34)
    return [
        line("dark", 0.05, ellipse(20, 70, 20, n=48) + [(40, 70)], ellipse(80, 70, 20, n=48) + [(100, 70)]),
        line("main", 0.05, [rear, seat, crank, rear], [seat, head, crank], [head, front], [head, (70, 24), (82, 22)]),
        line("dark", 0.06, [(32, 34), (48, 34)]),
    ]


def _boat() -> list[Layer]:
    return [
        line("dark", 0.025, [(50, 0), (50, 70)]),
        fill("accent", [(54, 4), (54, 64), (94, 64)], [(46, 14), (46, 64), (16, 64)]),
        fill("main", [(0, 66), (100, 66), (84, 96), (16, 96)]),
    ]


def _traffic_light() -> list[Layer]:
    return [
        fill("dark", rect(44, 76, 56, 140)),
        fill("main", rounded_rect(22, 0, 78, 80, 10)),
        fill("red", ellipse(50, 14, 10)),
        fill("yellow", ellipse(50, 40, 10)),
        fill("green", ellipse(50, 66, 10)),
    ]


def _bench() -> list[Layer]:
    return [
        fill("dark", rect(8, 52, 14, 90), rect(86, 52, 92, 90), rect(12, 4, 16, 50), rect(84, 4, 88, 50)),
        fill("main", rect(0, 6, 100, 16), rect(0, 22, 100, 32), rect(0, 44, 100, 54)),
    ]


def _person() -> list[Layer]:
    return [
        fill("pants", rect(36, 60, 48, 100), rect(52, 60, 64, 100)),
        line("main", 0.1, [(33, 32), (22, 62)], [(67, 32), (78, 62)]),
        fill("skin", ellipse(22, 64, 5), ellipse(78, 64, 5), ellipse(50, 14, 12)),
        fill("main", [(30, 28), (70, 28), (66, 64), (34, 64)]),
        fill("hair", ellipse(50, 11, 12.5, 10, start=180, end=360)),
    ]


def _dog() -> list[Layer]:
    return [
        line("main", 0.08, [(16, 42), (6, 24)]),
        fill("main", rect(20, 56, 28, 92), rect(30, 56, 38, 92), rect(58, 56, 66, 92), rect(68, 56, 76, 92),
             rounded_rect(14, 34, 80, 64, 14), ellipse(82, 28, 15), ellipse(94, 36, 10, 8)),
        fill("accent", rotate(ellipse(73, 33, 6, 13), 15, 73, 33)),
        fill("dark", ellipse(88, 23, 2.8), ellipse(103, 34, 3)),
    ]


def _cat() -> list[Layer]:
    return [
        line("main", 0.07, [(74, 92), (92, 88), (98, 70), (92, 56)]),
        fill("main", ellipse(50, 70, 28, 30), ellipse(50, 32, 22, 20), [(30, 26), (30, 0), (46, 14)],
             [(70, 26), (70, 0), (54, 14)]),
        fill("accent", [(33, 20), (33, 7), (42, 15)], [(67, 20), (67, 7), (58, 15)]),
        fill("eye", ellipse(42, 30, 4, 4.5), ellipse(58, 30, 4, 4.5)),
        fill("dark", [(47, 38), (53, 38), (50, 42)]),
        line("dark", 0.012, [(44, 42), (26, 38)], [(44, 44), (26, 48)], [(56, 42), (74, 38)], [(56, 44), (74, 48)]),
    ]


def _fish() -> list[Layer]:
    return [
        fill("main", [(22, 50), (0, 24), (0, 76)], [(40, 30), (52, 10), (66, 28)], ellipse(56, 50, 40, 26)),
        fill("accent", ellipse(52, 50, 5, 24.5), ellipse(68, 50, 4, 22)),
        fill("white", ellipse(80, 44, 6)),
        fill("dark", ellipse(81, 44, 3)),
    ]


def _crab() -> list[Layer]:
    legs = [[(30 + 0, 64 + 6 * i), (14, 64 + 10 * i), (6, 76 + 10 * i)] for i in range(3)]
    legs += [[(70, 64 + 6 * i), (86, 64 + 10 * i), (94, 76 + 10 * i)] for i in range(3)]
    return [
        line("main", 0.045, *legs, [(36, 54), (22, 34)], [(64, 54), (78, 34)]),
        line("dark", 0.03, [(42, 48), (40, 32)], [(58, 48), (60, 32)]),
        fill("main", ellipse(50, 62, 30, 20), ellipse(18, 22, 13, 14), ellipse(82, 22, 13, 14)),
        line("dark", 0.03, [(10, 12), (19, 22)], [(90, 12), (81, 22)]),
        fill("dark", ellipse(40, 30, 3.5), ellipse(60, 30, 3.5)),
    ]


def _anchor() -> list[Layer]:
    arm = ellipse(50, 50, 42, 40, start=20, end=160, n=60)
    return [
        line("main", 0.07, ellipse(50, 10, 9, n=32) + [(59, 10)]),
        fill("main", rect(46, 18, 54, 88), rect(26, 26, 74, 33)),
        line("main", 0.09, arm),
        fill("main", [(92, 58), (98, 80), (80, 74)], [(8, 58), (2, 80), (20, 74)]),
    ]


def _umbrella() -> list[Layer]:
    scallops = []
    for k in range(4):
        scallops += ellipse(87.5 - 25 * k, 44, 12.5, 6, start=0, end=-180, n=24)
    canopy = ellipse(50, 44, 50, 40, start=180, end=360, n=60) + scallops
    handle = [(50, 44), (50, 88)] + ellipse(42, 88, 8, 8, start=0, end=180, n=16)
    return [
        line("dark", 0.05, handle, [(50, 0), (50, -6)]),
        fill("main", canopy),
        line("accent", 0.025, [(50, 4), (50, 38)], [(50, 4), (25, 38)], [(50, 4), (75, 38)]),
    ]


def _ball() -> list[Layer]:
    """A beach ball seen from the side: five panels between meridians, tilted."""

    def meridian(lon: float) -> list[tuple[float, float]]:
        return [(50 + 50 * math.sin(math.radians(lon)) * math.cos(math.radians(lat)),
                 50 + 50 * math.sin(math.radians(lat))) for lat in range(-90, 91, 6)]

    cuts = [-90, -54, -18, 18, 54, 90]
    panels = [rotate(meridian(a) + meridian(b)[::-1], -25, 50, 50) for a, b in itertools.pairwise(cuts)]
    return [
        fill("main", panels[0], panels[4]),
        fill("white", panels[1], panels[3]),
        fill("accent", panels[2]),
        fill("white", rotate(ellipse(50, 2.5, 7, 3), -25, 50, 50)),
    ]


def _apple() -> list[Layer]:
    return [
        line("stem", 0.05, [(50, 22), (54, 2)]),
        fill("leaf", rotate(ellipse(68, 10, 14, 6), -25, 68, 10)),
        fill("main", ellipse(36, 58, 34, 38), ellipse(64, 58, 34, 38), ellipse(50, 78, 26, 22)),
        fill("shine", rotate(ellipse(28, 46, 5, 10), 20, 28, 46)),
    ]


def _banana() -> list[Layer]:
    body = rotate(crescent((50, 0), 58, (50, -22), 60), -15, 50, 20)
    tip_l, tip_r = min(body, key=lambda p: p[0]), max(body, key=lambda p: p[0])
    return [
        fill("main", body),
        fill("dark", ellipse(tip_l[0] + 2, tip_l[1], 3.5), ellipse(tip_r[0] - 2, tip_r[1], 3.5)),
        line("stem", 0.05, [(tip_r[0] - 2, tip_r[1]), (tip_r[0] + 6, tip_r[1] - 8)]),
    ]


def _cup() -> list[Layer]:
    return [
        line("main", 0.09, ellipse(76, 54, 16, 20, n=40) + [(92, 54)]),
        fill("main", rounded_rect(4, 10, 76, 100, 9)),
        fill("dark", ellipse(40, 16, 30, 6)),
        fill("accent", rect(4, 46, 76, 58)),
    ]


def _bottle() -> list[Layer]:
    return [
        fill("main", rounded_rect(10, 40, 90, 190, 10), [(10, 46), (34, 16), (66, 16), (90, 46)], rect(34, 6, 66, 22)),
        fill("accent", rect(30, 0, 70, 10)),
        fill("label", rect(10, 96, 90, 146)),
        fill("shine", rounded_rect(20, 50, 28, 88, 4)),
    ]


def _clock() -> list[Layer]:
    ticks = []
    for k in range(12):
        a = math.radians(k * 30)
        r0 = 33 if k % 3 else 29
        ticks.append([(50 + r0 * math.cos(a), 50 + r0 * math.sin(a)), (50 + 38 * math.cos(a), 50 + 38 * math.sin(a))])
    return [
        fill("main", ellipse(50, 50, 50, n=60)),
        fill("face", ellipse(50, 50, 42, n=60)),
        line("dark", 0.025, *ticks),
        line("dark", 0.05, [(50, 50), (50, 22)], [(50, 50), (70, 58)]),
        fill("hand", ellipse(50, 50, 4)),
    ]


def _book() -> list[Layer]:
    cover = [(0, 16), (50, 24), (100, 16), (100, 84), (50, 92), (0, 84)]
    left = [(6, 8), (48, 16), (48, 84), (6, 76)]
    right = [(94, 8), (52, 16), (52, 84), (94, 76)]
    text = [[(12, 22 + 9 * i), (42, 28 + 9 * i)] for i in range(6)]
    text += [[(58, 28 + 9 * i), (88, 22 + 9 * i)] for i in range(6)]
    return [fill("main", cover), fill("page", left, right), line("text", 0.015, *text)]


def _key() -> list[Layer]:
    return [
        line("main", 0.16, ellipse(18, 30, 14, n=40) + [(32, 30)]),
        fill("main", rect(30, 25, 100, 35), rect(78, 35, 85, 50), rect(90, 35, 96, 46)),
    ]


SHAPE_BUILDERS = {
    "sun": _sun, "moon": _moon, "star": _star, "cloud": _cloud, "airplane": _airplane, "kite": _kite,
    "bird": _bird, "butterfly": _butterfly, "tree": _tree, "flower": _flower, "mushroom": _mushroom,
    "house": _house, "car": _car, "bicycle": _bicycle, "boat": _boat, "traffic light": _traffic_light,
    "bench": _bench, "person": _person, "dog": _dog, "cat": _cat, "fish": _fish, "crab": _crab,
    "anchor": _anchor, "umbrella": _umbrella, "ball": _ball, "apple": _apple, "banana": _banana, "cup": _cup,
    "bottle": _bottle, "clock": _clock, "book": _book, "key": _key,
}


def build_shape(name: str) -> Shape:
    return make_shape(SHAPE_BUILDERS[name]())
