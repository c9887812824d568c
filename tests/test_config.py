"""Config: the shipped file equals the built-in defaults; env overrides; bad config names the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.cli import app
from collectors.config import ConfigError, TowerConfig, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_equals_defaults() -> None:
    assert load_config(ROOT / "config/tower.yaml") == TowerConfig()


def test_contract_section_4_defaults() -> None:
    config = TowerConfig()
    assert config.hourly_rate.for_queue(None) == 60.0
    assert config.hourly_rate.for_queue("anything") == 60.0
    assert [config.sla.for_risk_class(rc) for rc in ("low", "medium", "high", "critical", "other")] == [
        86400, 14400, 3600, 900, 14400]


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text("hourly_rate:\n  default: 80\n  queues: {kyc: 90}\nsla:\n  default_seconds: 100\n")
    monkeypatch.setenv("HITL_TOWER_SLA__DEFAULT_SECONDS", "7200")
    config = load_config(path)
    assert config.sla.default_seconds == 7200
    assert config.hourly_rate.for_queue("kyc") == 90
    assert config.hourly_rate.for_queue("other") == 80


def test_a_partial_mapping_keeps_the_other_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One risk class's SLA changed, in a file or a variable, with or without a file: the others keep
    theirs (a variable used to replace the whole built-in mapping, moving critical from 900 s to 14400 s)."""
    monkeypatch.chdir(tmp_path)  # no ./config/tower.yaml: the built-in defaults
    monkeypatch.setenv("HITL_TOWER_SLA__RISK_CLASSES__HIGH", "3601")
    expected = {"low": 86400, "medium": 14400, "high": 3601, "critical": 900}
    assert load_config().sla.risk_classes == expected
    assert load_config(ROOT / "config/tower.yaml").sla.risk_classes == expected
    monkeypatch.delenv("HITL_TOWER_SLA__RISK_CLASSES__HIGH")
    path = tmp_path / "tower.yaml"
    path.write_text("sla:\n  risk_classes: {high: 1800, urgent: 60}\nreview_mode: {low: review}\n")
    config = load_config(path)
    assert config.sla.risk_classes == {"low": 86400, "medium": 14400, "high": 1800, "critical": 900, "urgent": 60}
    assert config.review_mode == {"low": "review", "medium": "review", "high": "review", "critical": "review"}
    assert load_config(path).alerts == TowerConfig().alerts  # sections the file leaves out stay as they were


@pytest.mark.parametrize("text", ["alerts:\n  sla_breach_rate_max: true\n", "sla:\n  risk_classes: {high: no}\n"])
def test_a_boolean_is_an_error_not_a_number(tmp_path: Path, text: str) -> None:
    """pydantic reads true as 1.0: a threshold of 1.0 would silently switch the SLA alert off."""
    path = tmp_path / "tower.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="got the boolean"):
        load_config(path)


def test_a_warning_level_above_its_alert_level_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text("alerts:\n  psi_warn: 0.5\n  psi_alert: 0.25\n")
    with pytest.raises(ConfigError, match=r"alerts: psi_warn \(0.5\) must not be above psi_alert \(0.25\)"):
        load_config(path)


def test_a_bad_value_from_a_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_TOWER_ALERTS__PSI_ALERT", "high")
    with pytest.raises(ConfigError, match=r"^environment variable HITL_TOWER_ALERTS__PSI_ALERT \(alerts.psi_alert\)"):
        load_config(ROOT / "config/tower.yaml")


@pytest.mark.parametrize("name", ["HITL_TOWER_EXPORTER__WINDOWS", "HITL_TOWER_REVIEW_MODE"])
def test_a_list_or_mapping_variable_that_is_not_json_is_an_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "1h,24h")  # pydantic-settings reads such variables as JSON: was a traceback
    with pytest.raises(ConfigError, match="a variable for a list or mapping holds JSON"):
        load_config(ROOT / "config/tower.yaml")
    monkeypatch.setenv(name, '["1h", "24h"]' if name.endswith("WINDOWS") else '{"low": "review"}')
    load_config(ROOT / "config/tower.yaml")


def test_a_misspelt_environment_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-settings reads only the variables of known keys; one that names none must not pass."""
    monkeypatch.setenv("HITL_TOWER_HOURLY_RATES", "90")
    with pytest.raises(ConfigError, match="environment variable HITL_TOWER_HOURLY_RATES: unknown key 'hourly_rates'"):
        load_config()
    monkeypatch.delenv("HITL_TOWER_HOURLY_RATES")
    monkeypatch.setenv("hitl_tower_sla__bogus", "1")  # nested: pydantic-settings itself refuses it
    with pytest.raises(ConfigError, match="bogus"):
        load_config()
    monkeypatch.delenv("hitl_tower_sla__bogus")
    monkeypatch.setenv("HITL_TOWER_DB_URL", "sqlite:///x.db")  # known keys and the config path are fine
    monkeypatch.setenv("HITL_TOWER_CONFIG", "")
    assert load_config().db_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sla:\n  risk_clases: {}\n", "sla.risk_clases: unknown key"),
        ("hourly_rate:\n  default: -1\n", "hourly_rate.default"),
        ("hourly_rate:\n  queues: {kyc: -5}\n", "hourly_rate.queues"),
        ("sla:\n  risk_classes: {medium: -5}\n", "sla.risk_classes.medium: Input should be greater than 0"),
        ("sla:\n  risk_classes: {medium: 0}\n", "sla.risk_classes.medium: Input should be greater than 0"),
        ("sla:\n  risk_classes: {medium: .inf}\n", "sla.risk_classes.medium: Input should be a finite number"),
        ("sla:\n  default_seconds: .nan\n", "sla.default_seconds"),
        ("audit_probability: {low: 0}\n", "audit_probability"),
        ("alerts:\n  psi_alert: high\n", "alerts.psi_alert"),
        ("reference_window: {start: '2026-10-01T00:00:00', end: '2026-10-08T00:00:00Z'}\n",
         "reference_window.start"),
        ("currency: 'US dollar'\n", "currency"),
        ("currency: '$ '\n", "currency"),
        ("currency: 'US $'\n", "currency"),
        ("currency: EUR1\n", "currency"),
        ("currency: ABCDEFGHIJ\n", "currency"),
        ("sla: [1, 2\n", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_config(path)


def test_currency_is_read_from_the_file_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text("currency: EUR\n")
    assert load_config(path).currency == "EUR"
    monkeypatch.setenv("HITL_TOWER_CURRENCY", "$")
    assert load_config(path).currency == "$"


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [("1,415.64", "", "1,415.64"), ("1,415.64", "EUR", "1,415.64 EUR"), ("1.4k", "$", "$1.4k"),
     ("-12.00", "$", "-$12.00"), ("+3.50", "\u20ac", "+\u20ac3.50"), ("3.50", "R$", "R$3.50"),
     ("-2.1M", "CHF", "-2.1M CHF")],
)
def test_with_currency_puts_a_code_after_and_a_symbol_before_the_amount(amount: str, currency: str,
                                                                        shown: str) -> None:
    from collectors.wording import with_currency

    assert with_currency(amount, currency) == shown


@pytest.mark.parametrize("key", ["agreement_min_units", "sla_min_reviews"])
@pytest.mark.parametrize("value", ["0", "-5", "2.5", "many", "true"])
def test_queue_alert_sample_gates_are_whole_numbers_of_at_least_one(tmp_path: Path, key: str, value: str) -> None:
    """The minimum items behind alpha and reviews behind the SLA breach rate: 0 would judge an alpha of
    nothing, a fraction or a boolean is a typo."""
    path = tmp_path / "tower.yaml"
    path.write_text(f"alerts:\n  {key}: {value}\n")
    with pytest.raises(ConfigError, match=rf"alerts\.{key}"):
        load_config(path)


def test_queue_alert_sample_gates_default_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = load_config(ROOT / "config/tower.yaml").alerts
    assert (shipped.agreement_min_units, shipped.sla_min_reviews) == (30, 100)
    path = tmp_path / "tower.yaml"
    path.write_text("alerts:\n  agreement_min_units: 50\n")
    monkeypatch.setenv("HITL_TOWER_ALERTS__SLA_MIN_REVIEWS", "20")
    assert (load_config(path).alerts.agreement_min_units, load_config(path).alerts.sla_min_reviews) == (50, 20)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_bad_config_on_the_command_line_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text("sla:\n  default_seconds: -3\n")
    result = CliRunner().invoke(app, ["init-db", "--db", f"sqlite:///{tmp_path}/s.db", "--config", str(path)])
    assert result.exit_code == 2
    assert "sla.default_seconds" in result.output
    assert "Traceback" not in result.output


def test_a_number_where_a_section_belongs_says_how_to_write_it(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract names 'hourly_rate 60.0', so `hourly_rate: 75` is what an operator writes; it was
    refused with pydantic's 'Input should be a valid dictionary or instance of HourlyRates', which names
    a class of the code and neither the keys the section takes nor how to set the rate."""
    path = tmp_path / "tower.yaml"
    path.write_text("hourly_rate: 75\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "HourlyRates" not in message
    assert message == (f"config {path}: hourly_rate: expected a section with the keys default, queues, got 75 "
                       "(e.g. hourly_rate: {default: 75} in the file, HITL_TOWER_HOURLY_RATE__DEFAULT=75 "
                       "in the environment)")
    monkeypatch.setenv("HITL_TOWER_HOURLY_RATE", "75")
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert str(raised.value).startswith("environment variable HITL_TOWER_HOURLY_RATE (hourly_rate): expected a "
                                        "section with the keys default, queues, got 75 (e.g. ")
