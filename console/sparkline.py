"""A sparkline: a series' points as a small inline SVG polyline (no script needed)."""

from __future__ import annotations

from markupsafe import Markup

__all__ = ["sparkline"]


def sparkline(points: list[tuple[float, float]], width: int = 120, height: int = 24) -> Markup:
    """An ``<svg class="spark">`` of ``points`` (time, value), scaled to fill the box."""
    finite = [(t, v) for t, v in points if v == v and abs(v) != float("inf")]
    if len(finite) < 2:
        return Markup('<svg class="spark" width="{}" height="{}" aria-hidden="true"></svg>').format(
            width, height
        )
    t0, t1 = finite[0][0], finite[-1][0]
    lo = min(v for _, v in finite)
    hi = max(v for _, v in finite)
    span_t = (t1 - t0) or 1.0
    span_v = (hi - lo) or 1.0
    pad = 2
    coords = " ".join(
        f"{pad + (t - t0) / span_t * (width - 2 * pad):.1f},"
        f"{height - pad - (v - lo) / span_v * (height - 2 * pad):.1f}"
        for t, v in finite
    )
    return Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" aria-hidden="true">'
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{c}"/></svg>'
    ).format(w=width, h=height, c=coords)
