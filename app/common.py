"""Shared UI plumbing of the dashboard: store connection, cached data calls, sidebar filters, formatting.

No KPI is computed here: every number comes from `collectors.dashboard_data`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pandas as pd
import plotly.colors as px_colors
import streamlit as st

from collectors import dashboard_data
from collectors.kpis.spec import KPI_NAMES, KPIS, kpi_name  # noqa: F401 - names shared with the advice
from collectors.validate import parse_timestamp
from collectors.wording import (
    plural,  # noqa: F401 - the pages count with common.plural
    utc_minute,
    with_currency,
)

DB_ENV = "HITL_TOWER_DB_URL"
TTL_SECONDS = 30
REFRESH_SECONDS = 30
SPECS = {spec.id: spec for spec in KPIS}
FILTER_LABELS = {"risk_class": "Risk class", "queue": "Queue", "model_version": "Model version",
                 "agent_id": "Agent"}
ALL = "(all)"


@dataclass(frozen=True)
class Context:
    """What every page draws: the store, the window (relative to the newest decision) and the filters."""

    url: str
    window: str
    start_us: int
    end_us: int
    filters: dict[str, str] = field(default_factory=dict)

    @property
    def filter_key(self) -> tuple[tuple[str, str], ...]:
        """The filters as a hashable cache key."""
        return tuple(sorted(self.filters.items()))


@st.cache_resource
def get_config() -> Any:
    """The tower config, loaded once per server."""
    from collectors.config import load_config

    return load_config()


def risk_order(classes: Iterable[Any]) -> list[Any]:
    """Risk classes in the order of their SLA, the tightest first (critical, high, medium, low with the default
    config), as an ops lead ranks them: alphabetical order put "critical" next to "low". A class without an SLA
    of its own takes the default SLA's place; ties by name."""
    sla = get_config().sla
    return sorted(classes, key=lambda c: (sla.for_risk_class(str(c)), str(c)))


def db_url() -> str:
    """The store URL: $HITL_TOWER_DB_URL, else the config's db_url."""
    return os.environ.get(DB_ENV) or get_config().db_url


@st.cache_resource(show_spinner=False)
def get_engine(url: str) -> Any:
    """The store engine (raises StoreError when unreachable; failures are not cached)."""
    from collectors.store.db import open_store

    return open_store(url, create=False)


@st.cache_data(ttl=5, show_spinner=False)
def store_span(url: str) -> tuple[int, int] | None:
    """(oldest, newest) decision time of the store, or None when it holds no decision."""
    from collectors.store.db import decision_time_range

    return decision_time_range(get_engine(url))


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Reading the store ...")
def load(name: str, url: str, *args: Any, **kwargs: Any) -> Any:
    """`collectors.dashboard_data.<name>(engine, config, *args, **kwargs)`, cached for TTL_SECONDS."""
    fn = getattr(dashboard_data, name)
    return fn(get_engine(url), get_config(), *args, **kwargs)


class RecentFrames(MutableMapping[Any, Any]):
    """At most `size` window frames, each forgotten `ttl` seconds after it was read; thread-safe
    (Streamlit runs each session's script in its own thread)."""

    def __init__(self, size: int, ttl: float) -> None:
        self._size, self._ttl = size, ttl
        self._items: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _fresh(self) -> dict[Any, tuple[float, Any]]:
        now = time.monotonic()
        self._items = {k: v for k, v in self._items.items() if now - v[0] < self._ttl}
        return self._items

    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            return self._fresh()[key][1]

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            items = self._fresh()
            items[key] = (time.monotonic(), value)
            while len(items) > self._size:
                del items[min(items, key=lambda k: items[k][0])]

    def __delitem__(self, key: Any) -> None:
        with self._lock:
            del self._items[key]

    def __iter__(self) -> Iterator[Any]:
        with self._lock:
            return iter(list(self._fresh()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._fresh())


@st.cache_resource
def _frames() -> RecentFrames:
    """The decision frames the Steer pages share (one read of a window for all five)."""
    return RecentFrames(size=4, ttl=TTL_SECONDS)


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Computing ...")
def load_advice(module: str, name: str, url: str, *args: Any, **kwargs: Any) -> Any:
    """`collectors.advice.<module>.<name>(engine, config, *args, **kwargs)`, cached for TTL_SECONDS.

    Decision-support figures (thresholds, autonomy, changes, quality, fairness, triage) live in
    `collectors.advice`; like `load`, the page only draws what comes back. They share each
    window's decision frame for TTL_SECONDS (`RecentFrames`), so moving between those pages
    reads the store once.
    """
    import importlib

    from collectors.advice.frame import shared_frames

    fn = getattr(importlib.import_module(f"collectors.advice.{module}"), name)
    with shared_frames(_frames()):
        return fn(get_engine(url), get_config(), *args, **kwargs)


MARKER_ROW_PX = 17  # one row of marker words above a plot (a 10 px word's box is 16 px high)
MAX_MARKER_ROWS = 3  # rows of change words above a plot at most: a 3-day store's ten changes took 7 in a 7d window
_PLOT_PX = 300  # a plot's narrowest likely width (a half-width column at a 1400 px viewport)
_CHAR_PX = 6.5  # a 10 px font's widest usual character, so an estimate errs towards another row


def mark_changes(fig: Any, ctx: Context, plot_px: int = _PLOT_PX) -> Any:
    """Mark each change event of the page's window (not contradicting its filters) on a time-axis figure:
    a dotted vertical line with the change's kind written level just above the plot, near changes'
    words staggered into rows (rotated full labels ran into each other and were cut short); hover on
    the word for the whole label, who and why. `plot_px`: the plot's narrowest likely width, in pixels
    (a full-width chart can pass more, for fewer rows)."""
    markers = sorted(advice_for(ctx, "changes", "change_markers"), key=lambda m: m["changed_at_us"])
    span = max(ctx.end_us - ctx.start_us, 1)
    labels = [((m["changed_at_us"] - ctx.start_us) / span, str(m["kind"])) for m in markers]
    groups = marker_groups(labels, plot_px)
    rows = label_rows([group_word(labels, g) for g in groups], plot_px)
    for marker in markers:
        at = pd.Timestamp(marker["changed_at_us"], unit="us", tz="UTC")
        fig.add_vline(x=at, line_dash="dot", line_width=1, line_color="#7f7f7f", name=f"change {marker['id']}")
    for group, row in zip(groups, rows, strict=True):
        members = [markers[i] for i in group]
        at = pd.Timestamp(sum(m["changed_at_us"] for m in members) // len(members), unit="us", tz="UTC")
        fig.add_annotation(x=at, y=1, xref="x", yref="paper", text=group_word(labels, group)[1], showarrow=False,
                           xanchor="center", yanchor="bottom", yshift=MARKER_ROW_PX * row,
                           font={"size": 10, "color": "#555"}, name="change " + ", ".join(m["id"] for m in members),
                           hovertext="<br><br>".join(f"{m['label']}<br>{when(m['changed_at'])} by {m['actor']}: "
                                                     f"{m['reason'] or ''}" for m in members))
    if rows:
        _room_above(fig, max(rows) + 1)
    return fig


def label_rows(labels: list[tuple[float, str]], plot_px: int = _PLOT_PX) -> list[int]:
    """The row (0 = just above the plot) of each centred label, given as (x as a fraction of the axis,
    text) in x order: the lowest row whose previous label ends before this one starts, so no two overlap."""
    ends: list[float] = []
    rows = []
    for x, text in labels:
        half = (len(text) * _CHAR_PX + 8) / plot_px / 2
        row = next((i for i, end in enumerate(ends) if end <= x - half), len(ends))
        ends[row:row + 1] = [x + half]
        rows.append(row)
    return rows


def marker_groups(labels: list[tuple[float, str]], plot_px: int = _PLOT_PX,
                  max_rows: int = MAX_MARKER_ROWS) -> list[list[int]]:
    """The markers (as `label_rows` takes them, in x order) whose words are written as one: each alone while
    the words take fewer than `max_rows` rows; else, one at a time, a word in the top row joins its nearest
    neighbour's as "N changes" (its hover lists them) until they fit. Every marker keeps its own line."""
    groups = [[i] for i in range(len(labels))]
    while len(groups) > 1:
        words = [group_word(labels, g) for g in groups]
        rows = label_rows(words, plot_px)
        if max(rows) < max_rows:
            break
        k = rows.index(max(rows))
        near = [j for j in (k - 1, k + 1) if 0 <= j < len(groups)]
        j = min(near, key=lambda j: abs(words[j][0] - words[k][0]))
        first, second = sorted((j, k))
        groups[first:second + 1] = [groups[first] + groups[second]]
    return groups


def group_word(labels: list[tuple[float, str]], group: list[int]) -> tuple[float, str]:
    """A group's word and where it is centred: one marker's own word, or "N changes" amid them."""
    if len(group) == 1:
        return labels[group[0]]
    return sum(labels[i][0] for i in group) / len(group), f"{len(group)} changes"


def _room_above(fig: Any, rows: int) -> None:
    """Widen the top margin for `rows` rows of marker words, and the figure with it (the plot keeps its
    height); keep the title above them, at the top."""
    if fig.layout.height is not None:
        fig.update_layout(height=fig.layout.height + MARKER_ROW_PX * rows)
    fig.update_layout(margin_t=70 + MARKER_ROW_PX * rows, title_y=1, title_yref="container",
                      title_yanchor="top", title_pad_t=20)


def drawable(fig: Any) -> bool:
    """Whether any trace of the figure has a value to draw (a y, a pie's values, a heatmap's z): a line of
    a KPI with no value in any bucket (no primary review, no PSI bucket big enough) draws bare axes."""
    for trace in fig.data:
        values = next((v for name in ("y", "values", "z") if (v := getattr(trace, name, None)) is not None), None)
        if values is not None and pd.notna(pd.Series(list(values), dtype=object)).any():
            return True
    return False


HALF_WIDTH_TITLE_CHARS = 34  # a chart in one of two columns at 1024 px (sidebar open) is ~274 px wide
FULL_WIDTH_TITLE_CHARS = 70  # a page-wide chart there is ~564 px


def title(text: str, chars: int = FULL_WIDTH_TITLE_CHARS) -> str:
    """A chart title broken into lines of at most `chars` characters: plotly never wraps a title, and a
    long one ran past its chart at 1024 px ("... with 95% Wilson intervals (red: flagged; grey: n t")."""
    import textwrap

    return "<br>".join(textwrap.wrap(text, chars, break_long_words=False)) or text


def plot(fig: Any, empty: str, where: Any = None) -> None:
    """The figure at full width in `where` (default: the page), or the `empty` note instead when it has
    nothing to draw: an empty plot's bare axes read as a broken page, a short note says why."""
    target = st if where is None else where
    if drawable(fig):
        target.plotly_chart(fig, width="stretch")
    else:
        target.info(empty)


def mark_drift(fig: Any, ctx: Context) -> Any:
    """Mark each drift alert that began firing in the window (calibration change or drift, psi, confidence
    shift; only the filtered model version's) with a red dashed line and a ⚠ at its foot; alerts of one
    instant share one ⚠ whose hover names them all (stacked ⚠s left only the top one's hover reachable)."""
    by_time: dict[int, list[dict[str, Any]]] = {}
    for marker in load("drift_markers", ctx.url, ctx.start_us, ctx.end_us, dict(ctx.filters)):
        by_time.setdefault(int(marker["at_us"]), []).append(marker)
    for at_us, group in sorted(by_time.items()):
        at = pd.Timestamp(at_us, unit="us", tz="UTC")
        fig.add_vline(x=at, line_dash="dash", line_width=1, line_color="#d62728")
        fig.add_annotation(x=at, y=0, xref="x", yref="paper", text="⚠", showarrow=False, yanchor="bottom",
                           font={"size": 12, "color": "#d62728"}, name="drift alert",
                           hovertext="<br>".join(f"{m['label']}<br>since {m['at']}<br>{m['summary']}"
                                                 for m in group))
    return fig


def advice_for(ctx: Context, module: str, name: str, *args: Any) -> Any:
    """`load_advice` over the page's window and filters (the usual call of a decision-support page)."""
    return load_advice(module, name, ctx.url, ctx.start_us, ctx.end_us, dict(ctx.filters), *args)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def load_alerts(url: str, since_us: int | None = None) -> dict[str, pd.DataFrame]:
    """Firing alerts and the alert history."""
    return dashboard_data.alerts(get_engine(url), get_config(), since_us)


def alert_evaluation(url: str) -> dict[str, Any] | None:
    """When the rules last looked at the firing alerts, and whether that is stale (not cached: it is
    about now)."""
    return dashboard_data.alert_evaluation(get_engine(url), time.time_ns() // 1000)


# Plotly's Dark24 without its pure red (red marks drift alerts and caps): 23 colours before one repeats, all
# readable on white (a 30-day demo window holds over 6 versions; Light24's pastels vanish on white)
VERSION_PALETTE: tuple[str, ...] = tuple(c for c in px_colors.qualitative.Dark24 if c != "#FB0D0D")


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def model_versions(url: str) -> list[str]:
    """Every model version in the store, oldest first (`dashboard_data.model_versions`)."""
    return dashboard_data.model_versions(get_engine(url))


def version_colors(ctx: Context) -> dict[str, str]:
    """Each model version's one colour on every chart and page (plotly's color_discrete_map): by the
    store's order of versions, not a chart's order of traces, which differs between charts and windows."""
    return {version: VERSION_PALETTE[i % len(VERSION_PALETTE)] for i, version in enumerate(model_versions(ctx.url))}


def login_configured() -> bool:
    """Login is on only when .streamlit/secrets.toml has an [auth] section (OIDC, st.login)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all: login is off (the default)
        return False


def require_login() -> None:
    """With login on, end the run at a login prompt until the user has logged in."""
    if login_configured() and not st.user.get("is_logged_in", False):
        st.title("HITL Control Tower")
        st.write("This dashboard is protected. Log in with your identity provider to continue.")
        st.button("Log in", on_click=st.login, type="primary")
        st.stop()


def context() -> Context:
    """Draw the sidebar filters and return the page's context; show why and stop the page when there is none.

    Each page calls it (not main.py), so a page also works when run on its own (AppTest's switch_page).
    """
    from collectors.store.db import StoreError

    # Again here, for a page run without main.py (AppTest, `streamlit run app/views/x.py`): it should
    # still look like the app and keep the login gate. (The pages live in app/views/, not pages/, so
    # the server never runs one of them on its own by its URL: Streamlit's folder discovery would.)
    st.set_page_config(page_title="HITL Control Tower", layout="wide")
    require_login()
    st.sidebar.title("HITL Control Tower")
    url = db_url()
    st.sidebar.caption(f"Store: `{_safe(url)}`")
    try:
        span = store_span(url)
    except StoreError as exc:
        _stop("warning", f"The store cannot be read: {exc}. Set {DB_ENV} to a reachable store "
              "(e.g. run `hitl-tower demo`).")
    except Exception as exc:  # noqa: BLE001 - any driver error becomes a message, not a traceback
        first = str(exc).splitlines()[0] if str(exc) else ""
        _stop("warning", f"The store cannot be read: {type(exc).__name__}: {first}")
    if span is None:
        _stop("info", "The store holds no decisions yet. Load some with `hitl-tower ingest events.jsonl` "
              "or run `hitl-tower demo`.")
    window = _kept_selectbox("Time window", list(dashboard_data.WINDOWS), "window", default=1,
                             help="Relative to the newest decision in the store.")
    start, end = dashboard_data.window_bounds(span[1], window)
    options = dict(load("filter_options", url, start, end))
    options["risk_class"] = risk_order(options["risk_class"])
    filters: dict[str, str] = {}
    for name, label in FILTER_LABELS.items():
        choice = _kept_selectbox(label, [ALL, *options[name]], f"filter_{name}")
        if choice != ALL and choice is not None:
            filters[name] = choice
    st.sidebar.caption(f"Window: {_ts(start)} to {_ts(end)} (newest decision {_ts(span[1])})")
    return Context(url, window, start, end, filters)


def following_the_store(ctx: Context) -> Context:
    """The context with its window moved to end at the newest decision now (for a page that redraws
    itself: the window chosen at page load would otherwise stay put while events keep arriving)."""
    span = store_span(ctx.url)
    if span is None:
        return ctx
    start, end = dashboard_data.window_bounds(span[1], ctx.window)
    return Context(ctx.url, ctx.window, start, end, dict(ctx.filters))


def _kept_selectbox(label: str, options: list[str], key: str, default: int = 0, **kwargs: Any) -> str:
    """A sidebar selectbox whose choice survives switching pages (Streamlit drops a page's widget state).

    A choice with no decisions in the window now (e.g. a model version after a shorter window was
    picked) is set back to the default, and the sidebar says so: deleting the state alone left the
    browser showing the old choice while the page ignored it.
    """
    keep = f"_keep_{key}"
    if key in st.session_state and st.session_state[key] not in options:
        dropped = st.session_state[key]
        st.session_state[key] = options[default]
        st.session_state[keep] = options[default]
        st.sidebar.caption(f"{label} {dropped} has no decisions in this window: showing {options[default]}.")
    saved = st.session_state.get(keep)
    index = options.index(saved) if saved in options else default
    if key in st.session_state:
        value = st.sidebar.selectbox(label, options, key=key, **kwargs)
    else:
        value = st.sidebar.selectbox(label, options, index=index, key=key, **kwargs)
    st.session_state[keep] = value
    return str(value)


def _stop(kind: str, text: str) -> NoReturn:
    (st.warning if kind == "warning" else st.info)(text)
    st.stop()
    raise AssertionError("unreachable")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(invalid URL)"


_ts = utc_minute


def when(value: str) -> str:
    """An ISO timestamp as a reader reads it, "2026-11-25 00:14 UTC" (not "2026-11-25T00:14:50Z")."""
    return _ts(parse_timestamp(value))


def fmt(kpi_id: str, value: Any) -> str:
    """A KPI value for display by its unit; '-' for null."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    unit = SPECS[kpi_id].unit if kpi_id in SPECS else "score"
    if unit == "count":
        return f"{int(value):,}"
    if _in_percent(kpi_id):
        return f"{value:.1%}"
    if unit == "seconds":
        return _duration(float(value))
    if unit == "currency":
        return _money(float(value))
    return f"{value:.3f}"


def _money(value: float) -> str:
    """Currency for a tile: cents below 10,000, then compact (12.3k, 4.56M), which fits a narrow tile;
    with the configured currency (config `currency`: "$1.4k", "1,415.64 EUR")."""
    size = abs(value)
    if size < 10_000:
        text = f"{value:,.2f}"
    elif size < 1_000_000:
        text = f"{value / 1_000:,.1f}k"
    else:
        text = f"{value / 1_000_000:,.2f}M"
    return with_currency(text, get_config().currency)


def money_unit() -> str:
    """What amounts are in, for a title: the configured currency, else the word "currency"."""
    return get_config().currency or "currency"


def money_title(text: str) -> str:
    """An axis title of amounts, naming the configured currency when there is one: "cost per decision (EUR)"."""
    currency = get_config().currency
    return f"{text} ({currency})" if currency else text


def fmt_delta(kpi_id: str, value: Any) -> str | None:
    """A delta for st.metric, or None: a rate's in percentage points (a rate of 12% going to 13% is
    +1.0 pp, not +1%), a change that shows as zero as "±0"."""
    if value is None:
        return None
    size = _delta_size(kpi_id, value)
    if shows_as_zero(size):
        return "±0"
    return ("+" if value >= 0 else "-") + size


def delta_style(kpi_id: str, value: Any) -> dict[str, str]:
    """st.metric's delta_color and delta_arrow: the KPI's good direction, and neither colour nor
    arrow for a change that shows as zero (an "↑ +0" in red reads as a problem)."""
    if value is not None and shows_as_zero(_delta_size(kpi_id, value)):
        return {"delta_color": "off", "delta_arrow": "off"}
    return {"delta_color": delta_color(kpi_id), "delta_arrow": "auto"}


def delta_color(kpi_id: str) -> str:
    """st.metric delta colour from the KPI's good direction."""
    good = SPECS[kpi_id].good if kpi_id in SPECS else "neutral"
    return {"up": "normal", "down": "inverse"}.get(good, "off")


def _delta_size(kpi_id: str, value: float) -> str:
    """A delta's size as shown: percentage points for a rate shown in %, else the KPI's own format."""
    if _in_percent(kpi_id):
        return f"{abs(value) * 100:.1f} pp"
    return fmt(kpi_id, abs(value))


def _in_percent(kpi_id: str) -> bool:
    """Rates are shown in %, but for ece and ece_drift, which read as scores (0.042)."""
    return kpi_id in SPECS and SPECS[kpi_id].unit == "ratio" and kpi_id not in ("ece", "ece_drift")


def shows_as_zero(shown: str) -> bool:
    """A change's text that reads as no change ("+0.00", "-0.0 pp"): no digit but zeros."""
    return not any(digit in shown for digit in "123456789")


_DURATION_UNITS = ((120, 1, "s"), (7200, 60, "min"), (172_800, 3600, "h"), (math.inf, 86_400, "d"))


def _duration(seconds: float, down: bool = False) -> str:
    """Seconds in the unit that reads best, by size: a negative change keeps that unit ("-2.0 h", it read
    "-7200 s"); `down` rounds towards zero (a window short by a minute must not read as the whole 7.0 d)."""
    size = abs(seconds)
    _limit, unit, name = next((u for u in _DURATION_UNITS if size < u[0]), _DURATION_UNITS[-1])
    value = size / unit
    if down:
        value = math.floor(value) if unit == 1 else math.floor(value * 10) / 10
    text = f"{value:.0f} s" if unit == 1 else f"{value:.1f} {name}"
    return ("-" if seconds < 0 and not shows_as_zero(text) else "") + text


_UNIT_WORDS = {"s": "seconds", "min": "minutes", "h": "hours", "d": "days"}


def duration_unit(seconds: Any) -> tuple[float, str, str]:
    """(seconds per unit, its symbol, its word) in which a chart of durations up to `seconds` reads as the
    tiles and tables write them (`_duration`: days from 2 d, hours from 2 h...): a chart in hours read 576
    next to a table's "24.0 d"."""
    size = 0.0 if seconds is None or pd.isna(seconds) else abs(float(seconds))
    _limit, unit, name = next(u for u in _DURATION_UNITS if size < u[0])
    return float(unit), name, _UNIT_WORDS[name]


TILES_PER_ROW = 3  # at a 1024 px viewport (sidebar open) a fourth tile cut "harmful override rate" to "harmful o…"
TILE_GAP = "xsmall"  # 0.5 rem: bordered tiles need no more to stand apart, and their labels get the room


def tile_columns(count: int, per_row: int = TILES_PER_ROW) -> list[Any]:
    """Columns for `count` tiles (st.metric), in rows of at most `per_row` and as even as can be (4 tiles:
    2 + 2, 5: 3 + 2), every row with the same number of columns so the tiles keep one width; a row of
    tiles is created at a time, so rows stay aligned."""
    if count <= 0:
        return []
    rows = math.ceil(count / per_row)
    width = math.ceil(count / rows)
    columns: list[Any] = []
    for _ in range(rows):
        columns.extend(st.columns(width, gap=TILE_GAP))
    return columns[:count]


# ---- KPI ids in words ---------------------------------------------------------------------------------

# The KPI ids a table's or CSV's header may be: a reader sees `kpi_name`'s words, never "intervention_rate"
# (ids that already read as words stay). An advice rate reaches a page as a cell or a chart's field, which the
# page names itself: importing the advice modules here for their ids would cost each server 1.4 s (statsmodels).
NAMED_IDS = frozenset(i for i in SPECS if kpi_name(i) != i)
CSV_HELP = ("Headers and KPIs in words, as on screen; numbers raw: shares as fractions (0.12 = 12%), durations "
            "in seconds. Where a row is one KPI, its kpi_id or rate_id column keeps the id (the JSON report's and "
            "/metrics' key), for a script re-reading the file.")


def header(column: str) -> str:
    """A table's header for a column: a KPI's (or advice rate's) words, any other column's name with spaces
    for its underscores ("peer agreement", not "peer_agreement": a header is read, not parsed)."""
    return kpi_name(column) if column in NAMED_IDS else column.replace("_", " ")


def csv_header(column: str) -> str:
    """A CSV's header for a column: its words, with the unit where the file's raw number would mislead (a
    latency in words alone reads as hours on screen and 7380.5 in the file)."""
    if column not in NAMED_IDS:
        return column
    unit = SPECS[column].unit if column in SPECS else None
    return kpi_name(column) + (" (seconds)" if unit == "seconds" else "")


def kpi_labels(columns: Sequence[Any], column_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`column_config` with each column headed in words (`header`: st.dataframe shows the column's name
    otherwise, "intervention_rate", "agreement_items"); a label given (or a column hidden with None) stays."""
    config = dict(column_config or {})
    for column in map(str, columns):
        if header(column) == column or isinstance(config.get(column), str) or (
                column in config and config[column] is None):
            continue
        given = config.get(column) or {}
        if not given.get("label"):
            config[column] = {**given, "label": header(column)}
    return config


def dataframe(df: Any, column_config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """st.dataframe of a table (or its Styler) at full width without the index, its KPI columns headed in
    words and a cell without a value reading MISSING."""
    columns = getattr(df, "data", df).columns
    st.dataframe(df, hide_index=True, width="stretch", placeholder=MISSING,
                 column_config=kpi_labels(columns, column_config), **kwargs)


def csv_download(df: pd.DataFrame, name: str, label: str = "Download CSV") -> None:
    """A download button for a table, headed as `csv_header` names its columns (CSV_HELP says how)."""
    data = df.rename(columns=csv_header).to_csv(index=False).encode()
    st.download_button(label, data, file_name=f"{name}.csv", mime="text/csv", key=f"dl_{name}", help=CSV_HELP)


def filters_caption(ctx: Context) -> str:
    """One line naming the window and filters."""
    parts = [f"{FILTER_LABELS[k]} = {v}" for k, v in ctx.filters.items()]
    return f"{ctx.window} ({_ts(ctx.start_us)} to {_ts(ctx.end_us)})" + (
        "; " + ", ".join(parts) if parts else "")


# ---- tables -----------------------------------------------------------------------------------------

MISSING = "—"  # a cell without a value; Streamlit would print "None" in it


def p_text(p: float | None) -> str:
    """A p-value as a table reads it: "<0.001" below that (a 1e-300 says nothing more), else 3 significant
    digits."""
    if p is None or pd.isna(p):
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def _pct_text(value: float) -> str:
    return f"{value:.1%}"


def _points_text(value: float) -> str:
    return f"{value * 100:+.1f} pp"


def _score_text(value: float) -> str:
    return f"{value:.3f}"


def _count_text(value: float) -> str:
    return f"{value:,.0f}"


def _duration_text(value: float) -> str:
    return _duration(float(value))


def _money_text(value: float) -> str:
    return _money(float(value))


def _time_text(value: Any) -> str:
    return when(str(value))


CELL_TEXT: dict[str, Callable[[Any], str]] = {"rate": _pct_text, "points": _points_text, "score": _score_text,
                                               "p": p_text, "count": _count_text, "duration": _duration_text,
                                               "money": _money_text, "time": _time_text}


def styled(df: pd.DataFrame, kinds: Mapping[str, str], flagged: Sequence[bool] = (),
           flag_columns: Sequence[str] = ()) -> Any:
    """The table as shown: each column in `kinds` as its kind's text (rate in %, points as +1.2 pp, score,
    p-value, count, duration from seconds in s/min/h/d, money as a tile's, an ISO time as `when`), any other float in 3 significant digits (pandas would print 0.839800), missing as
    MISSING; `flag_columns` of the `flagged` rows shaded. The cells keep their numbers, so a column
    still sorts by value."""
    formats: dict[str, Callable[[Any], str]] = {c: CELL_TEXT[kind] for c, kind in kinds.items()}
    for column in df.select_dtypes("float").columns:
        formats.setdefault(column, "{:.3g}".format)
    style = df.style.format(formats, na_rep=MISSING)
    if any(flagged) and flag_columns:
        shades = ["background-color: #fde0dd" if flag else "" for flag in flagged]
        style = style.apply(lambda _: shades, subset=list(flag_columns))
    return style


def show_table(df: pd.DataFrame, kinds: Mapping[str, str], *, flagged: Sequence[bool] = (),
               flag_columns: Sequence[str] = (), column_config: Mapping[str, Any] | None = None) -> None:
    """`dataframe` of `styled(df, ...)`: a cell with no value reads MISSING (Styler's na_rep does not reach
    Streamlit's grid, its `placeholder` does)."""
    dataframe(styled(df, kinds, flagged, flag_columns), column_config)


# ---- reference window ---------------------------------------------------------------------------------

def reference_name(ctx: Context, reference: Mapping[str, str]) -> str:
    """How a caption names the window deltas compare with: "the 7d before", or a fixed one by its dates
    (config reference_window)."""
    start, end = parse_timestamp(reference["start"]), parse_timestamp(reference["end"])
    if end == ctx.start_us and end - start == ctx.end_us - ctx.start_us:
        return f"the {ctx.window.removeprefix('last ')} before"
    return f"the reference window {_ts(start)} to {_ts(end)}"


def reference_gap(reference: Mapping[str, str], oldest_us: int, name: str) -> str | None:
    """Why deltas would mislead, or None when the store reaches back over the whole reference window:
    before the store's first decision the window holds nothing, so a count doubles and a rate compares
    with a few days read as a week."""
    start, end = parse_timestamp(reference["start"]), parse_timestamp(reference["end"])
    if oldest_us <= start:
        return None
    first = f"its first decision: {_ts(oldest_us)}"
    if oldest_us >= end:
        return f"the store holds nothing from {name} ({first})"
    return f"{name} is only {_duration((end - oldest_us) / 1e6, down=True)} covered by the store ({first})"


def tile_deltas(ctx: Context, summary: Mapping[str, Any],
                tiles: Sequence[str] = ()) -> tuple[dict[str, float | None], str]:
    """The deltas a page's tiles (KPI ids `tiles`) may show (a `kpi_summary`'s), and the caption sentence
    saying what they compare with, or why there are none. The one rule of every page with tile deltas: none
    at all when the store does not reach back over the whole reference window; none on an outcome-based
    tile (dashboard_data.OUTCOME_KPIS) while the window's outcomes are still arriving (its outcome coverage
    is not comparable with the reference's: the missing outcomes of the last days read as a drop). A tile's
    arrow is read at a glance and a caption's caveat is not (a 10-day store's 30d window read
    "override count 4,539 ↑ +4,534")."""
    reference = summary["reference"]
    name = reference_name(ctx, reference)
    span = store_span(ctx.url)
    gap = None if span is None else reference_gap(reference, span[0], name)
    if gap:
        return {}, f"No deltas: {gap}, and a change against part of a window would mislead."
    deltas = dict(summary["deltas"])
    about = f"Deltas against {name} (red: worse, green: better)."
    cover = summary.get("outcome_coverage") or {}
    if not cover.get("comparable", True):
        held = [k for k in tiles if k in dashboard_data.OUTCOME_KPIS] if tiles else list(dashboard_data.OUTCOME_KPIS)
        for kpi_id in dashboard_data.OUTCOME_KPIS:
            deltas.pop(kpi_id, None)
        if held:
            about += (f" Outcomes still arriving: {cover['window']:.0%} of this window's decisions have an outcome, "
                      f"{cover['reference']:.0%} of {name}'s, so {', '.join(kpi_name(k) for k in held)} "
                      "show no delta (the missing outcomes would read as a change).")
    return deltas, about


def bucket_series(ctx: Context, kpi_ids: Sequence[str], by: str | None = None) -> pd.DataFrame:
    """The window's time series for a chart (`dashboard_data.timeseries`), in whole buckets only: a first
    bucket the window starts inside is left out (`whole_buckets_note` says so under the chart)."""
    return load("timeseries", ctx.url, ctx.start_us, ctx.end_us, dashboard_data.bucket_for(ctx.window),
                tuple(kpi_ids), dict(ctx.filters), by, whole_buckets=True)


def bucket_name(ctx: Context) -> str:
    """The window's time-series bucket in a word: "hour" (24h window) or "day"."""
    return "hour" if dashboard_data.bucket_for(ctx.window) == dashboard_data.HOUR_US else "day"


def time_axis(fig: Any, ctx: Context, what: str = "") -> Any:
    """Title a time axis by its bucket and clock, "day (UTC)", "day proposed (UTC)": a bare "bucket" said
    neither how long a point is nor whose midnight starts it."""
    return fig.update_xaxes(title_text=" ".join(filter(None, (bucket_name(ctx), what, "(UTC)"))))


def whole_buckets_note(ctx: Context) -> str:
    """The caption sentences saying where a chart of `bucket_series` begins, when it leaves a part bucket out, and
    where the store begins, when that is inside the window: a 3-day store's 7d window drew four empty days under
    a caption saying the charts began with the window's first day, as if no decision had been made on them."""
    bucket_us = dashboard_data.bucket_for(ctx.window)
    first = dashboard_data.first_whole_bucket(ctx.start_us, bucket_us)
    notes = []
    if first != ctx.start_us:
        unit = bucket_name(ctx)
        notes.append(f"Charts over time begin with the first whole {unit} of the window, {_ts(first)}: the "
                     f"{_duration((first - ctx.start_us) / 1e6)} before it count in the window's tiles and tables, "
                     f"but are not drawn as a {unit}.")
    span = store_span(ctx.url)
    if span is not None and span[0] > ctx.start_us:
        notes.append(f"The store's first decision is from {_ts(span[0])}, "
                     f"{_duration((span[0] - ctx.start_us) / 1e6, down=True)} into the window: the charts hold "
                     "nothing before it.")
    return " ".join(notes)


def outcome_note(ctx: Context) -> str:
    """A caption sentence with the window's outcome coverage, for a page of outcome-based figures."""
    summary = load("kpi_summary", ctx.url, ctx.start_us, ctx.end_us, dict(ctx.filters))
    cover = summary.get("outcome_coverage") or {}
    if cover.get("window") is None:
        return ""
    return (f"Outcome coverage: {cover['window']:.0%} of this window's decisions have an outcome so far"
            + (f" ({cover['reference']:.0%} of the window before)." if cover.get("reference") is not None else "."))


def outcomes_arriving_since(ctx: Context, series: pd.DataFrame) -> pd.Timestamp | None:
    """The first of the series' last buckets whose outcomes are still arriving (their coverage well below
    the window's baseline: `dashboard_data.outcomes_arriving_since`), or None."""
    summary = load("kpi_summary", ctx.url, ctx.start_us, ctx.end_us, dict(ctx.filters))
    baseline = (summary.get("outcome_coverage") or {}).get("baseline")
    return dashboard_data.outcomes_arriving_since(series, baseline)


ARRIVING_FILL = "#bdbdbd"


def mark_outcomes_arriving(fig: Any, ctx: Context, since: pd.Timestamp | None) -> Any:
    """Shade the buckets from `since` to the window's end grey, "outcomes still arriving": their
    outcome-based values stand on fewer outcomes than older buckets' and are not yet comparable."""
    if since is None:
        return fig
    end = pd.Timestamp(ctx.end_us, unit="us", tz="UTC")
    fig.add_vrect(x0=since, x1=end, fillcolor=ARRIVING_FILL, opacity=0.25, line_width=0, layer="below",
                  name="outcomes still arriving", annotation_text="outcomes still arriving",
                  annotation_position="bottom left", annotation_font={"size": 10, "color": "#555"})
    return fig


def delta_args(kpi_id: str, deltas: Mapping[str, Any]) -> dict[str, Any]:
    """st.metric's delta, delta_color and delta_arrow for the KPI's tile from `tile_deltas`' deltas."""
    value = deltas.get(kpi_id)
    return {"delta": fmt_delta(kpi_id, value), **delta_style(kpi_id, value)}
