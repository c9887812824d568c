"""Tower configuration: section 4 defaults, loaded from YAML then `HITL_TOWER_*` variables.

The built-in defaults below equal `config/tower.yaml` (a test checks it), so
an installed tool with no config file behaves like the shipped config.
Config is loaded once, by the CLI or the app, and passed down; nothing reads
YAML or the environment on import.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

DEFAULT_CONFIG_PATH = Path("config/tower.yaml")
CONFIG_ENV_VAR = "HITL_TOWER_CONFIG"


class ConfigError(ValueError):
    """A config file or variable that cannot be used; the message names the key."""


def _check_duration(value: str) -> str:
    duration_seconds(value)  # raises ValueError with the reason
    return value


Duration = Annotated[str, AfterValidator(_check_duration)]
"""A duration such as "15m", "24h" or "7d" (see duration_seconds), checked when the config loads."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HourlyRates(_Strict):
    """Reviewer cost per hour of review time, per queue, with a default."""

    default: float = Field(60.0, ge=0)
    queues: dict[str, float] = Field(default_factory=dict)

    @field_validator("queues")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for queue, rate in value.items():
            if rate < 0:
                raise ValueError(f"hourly rate of queue {queue!r} must be >= 0")
        return value

    def for_queue(self, queue: str | None) -> float:
        """The hourly rate of a queue (the default for no queue or an unlisted one)."""
        return self.queues.get(queue, self.default) if queue is not None else self.default


def _default_sla() -> dict[str, float]:
    return {"low": 86400.0, "medium": 14400.0, "high": 3600.0, "critical": 900.0}


class Sla(_Strict):
    """Time-to-decision SLA for primary reviews, in seconds, per risk class."""

    risk_classes: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(default_factory=_default_sla)
    default_seconds: float = Field(14400.0, gt=0, allow_inf_nan=False)

    def for_risk_class(self, risk_class: str) -> float:
        """SLA seconds of a risk class (the default for an unlisted one)."""
        return self.risk_classes.get(risk_class, self.default_seconds)


ReviewMode = Literal["auto", "review", "shadow"]


def _default_modes() -> dict[str, ReviewMode]:
    return {"low": "auto", "medium": "review", "high": "review", "critical": "review"}


def _default_audit() -> dict[str, float]:
    return {"low": 0.05, "medium": 0.1, "high": 0.2, "critical": 1.0}


class Alerts(_Strict):
    """Thresholds shared by the built-in alert engine and the Prometheus rules."""

    min_outcomes: int = Field(200, ge=1)
    min_decisions: int = Field(100, ge=1)
    ece_drift_warn: float = Field(0.05, ge=0)
    ece_drift_alert: float = Field(0.10, ge=0)
    psi_warn: float = Field(0.10, ge=0)
    psi_alert: float = Field(0.25, ge=0)
    psi_min_decisions: int = Field(1000, ge=1)
    agreement_alpha_min: float = Field(0.5, ge=-1, le=1)
    agreement_min_units: int = Field(30, ge=1)  # items reviewed by 2+ reviewers behind alpha
    sla_breach_rate_max: float = Field(0.10, ge=0, le=1)
    sla_min_reviews: int = Field(100, ge=1)  # primary reviews behind the SLA breach rate
    backlog_age_seconds_max: float = Field(14400.0, gt=0)
    intervention_rate_spike: float = Field(0.15, ge=0, le=1)
    adwin_delta: float = Field(0.002, gt=0, lt=1)
    adwin_replay_outcomes: int = Field(5000, ge=1)
    calibration_persist_delta: float = Field(0.05, gt=0, le=1)
    confidence_shift_min_delta: float = Field(0.05, ge=0, le=1)
    confidence_shift_min_decisions: int = Field(200, ge=1)
    confidence_shift_replay_decisions: int = Field(5000, ge=1)
    replay_lookback: Duration = "30d"
    resolve_hysteresis: float = Field(0.8, gt=0, le=1)
    window: Duration = "24h"

    @model_validator(mode="after")
    def _warn_below_alert(self) -> Alerts:
        for level in ("ece_drift", "psi"):
            warn, alert = getattr(self, f"{level}_warn"), getattr(self, f"{level}_alert")
            if warn > alert:
                raise ValueError(f"{level}_warn ({warn}) must not be above {level}_alert ({alert})")
        return self


class ReferenceWindow(_Strict):
    """A fixed baseline window for psi and ece_drift, used when a report is given none.

    Left unset, the reference is the window of equal length that ends where
    the reported window starts (the contract's default).
    """

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        from collectors.validate import EventError, parse_timestamp

        try:
            parse_timestamp(value)
        except EventError as exc:
            raise ValueError(str(exc)) from None
        return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> int:
    """Seconds of a duration such as "90s", "15m", "1h", "24h", "7d" or "2w" (ValueError otherwise)."""
    import re

    match = re.fullmatch(r"([1-9][0-9]*)([smhdw])", text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 15m, 1h, 24h, 7d or 2w")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _default_windows() -> list[str]:
    return ["1h", "24h", "7d"]


class Exporter(_Strict):
    """The Prometheus exporter (`hitl-tower serve-metrics`): windows, refresh, label cap, address."""

    windows: list[Duration] = Field(default_factory=_default_windows, min_length=1)
    interval_seconds: float = Field(30.0, gt=0)
    refresh_timeout_seconds: float = Field(300.0, gt=0)
    # A refresh still running after this is aborted (its database connections closed) and retried:
    # a dead network path can hang a read for hours (TCP keepalive) or for ever.
    refresh_abort_seconds: float = Field(900.0, gt=0)
    label_cap: int = Field(50, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("windows must be distinct")
        return value

    @model_validator(mode="after")
    def _abort_after_timeout(self) -> Exporter:
        if self.refresh_abort_seconds < self.refresh_timeout_seconds:
            raise ValueError(f"refresh_abort_seconds ({self.refresh_abort_seconds:g}) must not be below "
                             f"refresh_timeout_seconds ({self.refresh_timeout_seconds:g})")
        return self


def _default_max_error_rate() -> dict[str, float]:
    return {"low": 0.05, "medium": 0.03, "high": 0.01, "critical": 0.005}


class Thresholds(_Strict):
    """Threshold advice (`hitl-tower thresholds`): error-rate caps, sample floor, bootstrap."""

    max_error_rate: dict[str, float] = Field(default_factory=_default_max_error_rate)
    default_max_error_rate: float = Field(0.03, ge=0, le=1)
    min_outcomes: int = Field(200, ge=1)
    bootstrap_resamples: int = Field(200, ge=10)
    interval_level: float = Field(0.9, gt=0, lt=1)

    def cap_for(self, risk_class: str) -> float:
        """The maximum final error rate a risk class tolerates (the default for an unlisted one)."""
        return self.max_error_rate.get(risk_class, self.default_max_error_rate)


class StageCriteria(_Strict):
    """What a (action type, model version) must show, stable for `stable_days`, to climb one rung."""

    min_samples: int = Field(ge=1)
    min_agreement: float = Field(ge=0, le=1)
    min_accuracy: float = Field(ge=0, le=1)
    max_ece: float = Field(ge=0, le=1)
    stable_days: int = Field(ge=1)


def _shadow_exit() -> StageCriteria:
    return StageCriteria(min_samples=300, min_agreement=0.80, min_accuracy=0.75, max_ece=0.08, stable_days=7)


def _assisted_exit() -> StageCriteria:
    return StageCriteria(min_samples=1000, min_agreement=0.90, min_accuracy=0.95, max_ece=0.05, stable_days=14)


class Autonomy(_Strict):
    """Staged autonomy: criteria to leave shadow mode (for review with auto-approve above a
    threshold) and to leave assisted mode (for auto with post-hoc audit)."""

    shadow_exit: StageCriteria = Field(default_factory=_shadow_exit)
    assisted_exit: StageCriteria = Field(default_factory=_assisted_exit)
    min_daily_samples: int = Field(20, ge=1)
    interval_level: float = Field(0.95, gt=0, lt=1)


def _default_segment_keys() -> list[str]:
    return ["region", "customer_tier", "language"]


class Fairness(_Strict):
    """Fairness gaps: which segment keys are judged and exported, and when a gap counts."""

    segment_keys: list[str] = Field(default_factory=_default_segment_keys)
    max_values: int = Field(20, ge=1)
    min_samples: int = Field(100, ge=1)
    interval_level: float = Field(0.95, gt=0, lt=1)


class Changes(_Strict):
    """Pre/post comparison of change events: equal windows either side, test level."""

    window: Duration = "7d"
    significance: float = Field(0.05, gt=0, lt=1)


class Triage(_Strict):
    """Review priority advice (`hitl-tower triage`)."""

    min_decisions: int = Field(50, ge=1)
    top: int = Field(20, ge=1)


class TowerConfig(BaseSettings):
    """All tower settings; unknown keys are errors so a typo never passes silently."""

    model_config = SettingsConfigDict(
        env_prefix="HITL_TOWER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    db_url: str = "sqlite:///hitl-tower.db"
    currency: str = Field("", max_length=8)
    hourly_rate: HourlyRates = Field(default_factory=HourlyRates)
    sla: Sla = Field(default_factory=Sla)
    review_mode: dict[str, ReviewMode] = Field(default_factory=_default_modes)
    audit_probability: dict[str, float] = Field(default_factory=_default_audit)
    default_audit_probability: float = Field(0.1, gt=0, le=1)
    alerts: Alerts = Field(default_factory=Alerts)
    reference_window: ReferenceWindow | None = None
    exporter: Exporter = Field(default_factory=Exporter)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    autonomy: Autonomy = Field(default_factory=Autonomy)
    fairness: Fairness = Field(default_factory=Fairness)
    changes: Changes = Field(default_factory=Changes)
    triage: Triage = Field(default_factory=Triage)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        # Display only (money is in one currency, contract section 1): a code such as USD or a symbol such as $.
        if any(c.isspace() or c.isdigit() or c in "+-." for c in value):
            raise ValueError(f"currency {value!r} must be a code such as USD or a symbol such as $ "
                             "(no spaces, digits or signs)")
        return value

    @field_validator("audit_probability")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for risk_class, p in value.items():
            if not 0 < p <= 1:
                raise ValueError(f"audit probability of {risk_class!r} must be in (0, 1]")
        return value

    @model_validator(mode="after")
    def _alert_window_is_exported(self) -> TowerConfig:
        # The Prometheus rules select window=<alerts.window>: the exporter must publish it.
        if self.alerts.window not in self.exporter.windows:
            raise ValueError(f"alerts.window {self.alerts.window!r} must be one of exporter.windows "
                             f"{self.exporter.windows}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment variables override the file, which overrides the defaults.
        return (env_settings, init_settings)


def load_config(path: str | Path | None = None) -> TowerConfig:
    """Load the config: `path`, else $HITL_TOWER_CONFIG, else ./config/tower.yaml if present.

    Raises ConfigError naming the offending key when the file or a variable is invalid.
    """
    chosen = path or os.environ.get(CONFIG_ENV_VAR)
    if chosen is None and DEFAULT_CONFIG_PATH.is_file():
        chosen = DEFAULT_CONFIG_PATH
    data: dict[str, Any] = _read_yaml(Path(chosen)) if chosen else {}
    _check_no_booleans(data, chosen)
    _check_environment_keys(os.environ)
    try:
        # Mappings merge key by key with the built-in defaults, in the file and in variables alike:
        # `sla.risk_classes: {high: 1800}` changes one risk class and keeps the others' SLAs.
        return TowerConfig(**_merged(copy.deepcopy(_DEFAULTS), data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, chosen, os.environ)) from None
    except SettingsError as exc:  # a variable of a list or mapping key that is not JSON
        raise ConfigError(f"{exc}: a variable for a list or mapping holds JSON, e.g. "
                          f"HITL_TOWER_EXPORTER__WINDOWS='{_WINDOWS_EXAMPLE}' (or set one key: "
                          "HITL_TOWER_SLA__RISK_CLASSES__HIGH=1800)") from None


_WINDOWS_EXAMPLE = '["1h", "24h"]'


# The built-in defaults as plain data (model_construct: no environment is read).
_DEFAULTS: dict[str, Any] = TowerConfig.model_construct().model_dump()


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it; nested mappings merge, any other value replaces."""
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        out[key] = _merged(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return out


def _check_no_booleans(data: Mapping[str, Any], source: str | Path | None, path: str = "") -> None:
    """ConfigError for a YAML true/false/yes/no: no setting is a flag, and pydantic would read a
    boolean as the number 1 or 0 (`sla_breach_rate_max: true` silently disabling an alert)."""
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, bool):
            raise ConfigError(f"config {source}: {where}: expected a number or text, got the boolean "
                              f"{str(value).lower()} (YAML reads yes/no/on/off as booleans)")
        if isinstance(value, Mapping):
            _check_no_booleans(value, source, where)


def _check_environment_keys(environ: Mapping[str, str]) -> None:
    """ConfigError for a `HITL_TOWER_*` variable that names no key: pydantic-settings reads only the
    variables of known top-level keys and would ignore a misspelt one (HITL_TOWER_HOURLY_RATES=90),
    leaving the operator sure of a setting that is not in force."""
    prefix = "HITL_TOWER_"
    for name in sorted(environ):
        if not name.upper().startswith(prefix) or name.upper() == CONFIG_ENV_VAR:
            continue
        key = name[len(prefix):].lower().split("__")[0]
        if key not in TowerConfig.model_fields:
            raise ConfigError(f"environment variable {name}: unknown key {key!r} (known: "
                              f"{', '.join(TowerConfig.model_fields)}; {CONFIG_ENV_VAR} names the config file)")


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    return data


def _is_number(value: Any) -> bool:
    """A YAML number, or a variable's text that reads as one."""
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _section_model(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model of the config section at `loc` (HourlyRates for ("hourly_rate",)), if it is one."""
    model: type[BaseModel] = TowerConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        candidates = [annotation, *get_args(annotation)]
        found = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if found is None:
            return None
        model = found
    return None if model is TowerConfig else model


def _describe(exc: ValidationError, source: str | Path | None, environ: Mapping[str, str]) -> str:
    where = f"config {source}" if source else "config"
    variables = {name.upper(): name for name in environ}
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        section = _section_model(err["loc"]) if err["type"] == "model_type" else None
        if section is not None:
            # pydantic's "Input should be a valid dictionary or instance of HourlyRates" names a class of
            # the code: say which keys the section takes and how to set one (`hourly_rate: 75`).
            fields, value = list(section.model_fields), err["input"]
            names = "__".join(str(part) for part in err["loc"]).upper()
            keys = ", ".join(fields[:6]) + (", ..." if len(fields) > 6 else "")
            # The value itself as the example when it fits the first key (hourly_rate: 75 -> default).
            example = value if _is_number(value) and section.model_fields[fields[0]].annotation is float else "..."
            msg = (f"expected a section with the keys {keys}, got {value} (e.g. {key}: "
                   f"{{{fields[0]}: {example}}} in the file, HITL_TOWER_{names}__{fields[0].upper()}={example} "
                   "in the environment)")
        # A value from a variable is named by the variable: the file may not hold that key at all.
        variable = variables.get("HITL_TOWER_" + "__".join(str(part) for part in err["loc"]).upper())
        lines.append(f"environment variable {variable} ({key}): {msg}" if variable else f"{where}: {key}: {msg}")
    return "\n".join(lines)
