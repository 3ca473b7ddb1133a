"""Sparklines: a small inline SVG polyline."""

from __future__ import annotations

import math
import re

import pytest
from markupsafe import Markup, escape

from console.sparkline import sparkline


def _coords(svg: str) -> list[tuple[float, float]]:
    m = re.search(r'points="([^"]*)"', svg)
    assert m, svg
    return [(float(x), float(y)) for x, y in (p.split(",") for p in m.group(1).split())]


@pytest.mark.parametrize("points", [[], [(1.0, 5.0)]])
def test_fewer_than_two_points_give_an_empty_svg(points: list[tuple[float, float]]) -> None:
    svg = sparkline(points, width=100, height=20)
    assert isinstance(svg, Markup)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "polyline" not in svg
    assert 'width="100"' in svg and 'height="20"' in svg


def test_several_points_give_a_polyline_inside_the_box() -> None:
    points = [(0.0, 3.0), (10.0, -7.5), (20.0, 12.0), (30.0, 0.0), (40.0, 2.0)]
    svg = sparkline(points, width=120, height=24)
    coords = _coords(svg)
    assert len(coords) == len(points)
    assert all(0 <= x <= 120 and 0 <= y <= 24 for x, y in coords)
    xs = [x for x, _ in coords]
    assert xs == sorted(xs)
    # the highest value is drawn highest (smallest y), the lowest lowest
    ys = [y for _, y in coords]
    assert ys.index(min(ys)) == 2 and ys.index(max(ys)) == 1


def test_flat_series_and_single_timestamp_stay_inside_the_box() -> None:
    coords = _coords(sparkline([(5.0, 1.0), (5.0, 1.0), (5.0, 1.0)], width=50, height=10))
    assert all(0 <= x <= 50 and 0 <= y <= 10 for x, y in coords)


def test_nan_and_inf_points_are_skipped() -> None:
    points = [(0.0, 1.0), (1.0, math.nan), (2.0, math.inf), (3.0, -math.inf), (4.0, 2.0)]
    svg = sparkline(points)
    assert len(_coords(svg)) == 2
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    # only one finite point left: the empty svg
    assert "polyline" not in sparkline([(0.0, math.nan), (1.0, 3.0)])


def test_output_is_markup_and_not_escaped_again() -> None:
    svg = sparkline([(0.0, 1.0), (1.0, 2.0)])
    assert isinstance(svg, Markup)
    assert escape(svg) == svg  # a template shows it as SVG, not as text
    assert "&lt;" not in svg
    assert set(re.findall(r"<(/?\w+)", svg)) <= {"svg", "/svg", "polyline"}
