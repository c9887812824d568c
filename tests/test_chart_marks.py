"""Labels of the Cost curves page's threshold lines: one per spot, never two on top of each other."""

from __future__ import annotations

from app.chart_marks import threshold_markers


def test_markers_at_the_same_threshold_share_one_line_and_label() -> None:
    drawn = threshold_markers([(0.75, "current", "grey"), (0.85, "recommended", "green"), (0.75, "slider", "purple")])
    assert [(x, label) for x, _c, _d, label, _p in drawn] == [(0.75, "current = slider 0.75"),
                                                              (0.85, "recommended 0.85")]
    assert drawn[0][1] == "grey" and drawn[0][2] == "solid"


def test_close_lines_write_their_labels_apart() -> None:
    drawn = threshold_markers([(0.80, "current", "grey"), (0.81, "recommended", "green"), (0.82, "slider", "purple")])
    assert [p for *_rest, p in drawn] == ["top left", "bottom right", "top right"]
    assert len({p for *_rest, p in drawn}) == len(drawn)
    assert drawn[2][2] == "dot"  # the slider alone: dotted


def test_missing_thresholds_are_skipped() -> None:
    assert threshold_markers([(None, "current", "grey"), (None, "recommended", "green")]) == []
    [(x, _c, _d, label, position)] = threshold_markers([(None, "current", "grey"), (0.9, "slider", "purple")])
    assert (x, label, position) == (0.9, "slider 0.90", "top")
