"""Where to write the labels of vertical marker lines, so that labels of close lines stay readable."""

from __future__ import annotations

from collections.abc import Sequence

# Marker lines in the order of their x: the first label reads to the left of its line, the last to
# the right, one in between under the plot's top edge, so no two labels share a spot.
_POSITIONS = {1: ("top",), 2: ("top left", "top right"), 3: ("top left", "bottom right", "top right")}


def threshold_markers(markers: Sequence[tuple[float | None, str, str]]
                      ) -> list[tuple[float, str, str, str, str]]:
    """(x, colour, dash, label, annotation position) of each line to draw for (x, name, colour) markers.

    Markers without an x are skipped; markers at the same x share one line and one label
    ("current = slider 0.75"), drawn in the first one's colour. The slider's line is dotted.
    """
    merged: dict[float, list[tuple[str, str]]] = {}
    for value, name, color in markers:
        if value is not None:
            merged.setdefault(round(float(value), 9), []).append((name, color))
    if not merged:
        return []
    xs = sorted(merged)
    positions = _POSITIONS.get(len(xs)) or tuple("top right" if i % 2 else "top left" for i in range(len(xs)))
    drawn = []
    for x, position in zip(xs, positions, strict=True):
        names = [name for name, _color in merged[x]]
        dash = "dot" if names == ["slider"] else "solid"
        drawn.append((x, merged[x][0][1], dash, f"{' = '.join(names)} {x:.2f}", position))
    return drawn
