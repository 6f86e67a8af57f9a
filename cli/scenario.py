"""The demo's year: about 50 models in five groups, two pipelines and an
independent validation team, retrains, validations, deployments with tag
moves, an incident, a retirement and a key revocation, on a simulated clock.

It also holds a few lapses an examiner's findings profiles catch (specs/findings.md):
a pipeline that validates its own model (April), a production tag after a failed
validation (June, July), a model deployed without validation or AI Act evidence
(August), a high-risk model without recorded human oversight, and a missed
semi-annual monitoring review (June)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ledger import ActorKey, Ledger, LogKey

ORIGIN = "demo.example/model-inventory"
START = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)

PORTFOLIO: dict[str, list[tuple[str, str]]] = {
    "fraud": [("fraud_card_txn", "high"), ("fraud_account_takeover", "high"),
              ("fraud_merchant_risk", "medium"), ("fraud_mule_network", "high"),
              ("fraud_chargeback", "medium"), ("fraud_device_fingerprint", "medium"),
              ("fraud_wire_transfer", "high"), ("fraud_synthetic_id", "high"),
              ("fraud_rules_engine", "low"), ("fraud_alert_triage", "medium")],
    "credit": [("credit_pd_retail", "high"), ("credit_lgd_retail", "high"),
               ("credit_ead_cards", "high"), ("credit_application_score", "high"),
               ("credit_behaviour_score", "medium"), ("credit_limit_optimiser", "medium"),
               ("credit_collections_prioritiser", "low"), ("credit_legacy_scorecard", "high"),
               ("credit_sme_rating", "high"), ("credit_early_warning", "medium")],
    "aml": [("aml_transaction_monitoring", "high"), ("aml_sanctions_screening", "high"),
            ("aml_customer_risk_rating", "high"), ("aml_name_matching", "medium"),
            ("aml_alert_scoring", "medium"), ("aml_network_analytics", "medium"),
            ("aml_adverse_media_nlp", "low"), ("aml_case_summariser_llm", "medium"),
            ("aml_threshold_tuner", "low"), ("aml_kyc_document_ocr", "medium")],
    "pricing": [("pricing_mortgage_rate", "high"), ("pricing_deposit_elasticity", "medium"),
                ("pricing_card_apr", "medium"), ("pricing_fx_spread", "low"),
                ("pricing_insurance_premium", "high"), ("pricing_churn_uplift", "low"),
                ("pricing_competitor_monitor", "low"), ("pricing_promo_response", "low")],
    "operations": [("ops_call_volume_forecast", "low"), ("ops_liquidity_forecast", "high"),
                   ("ops_atm_cash_demand", "low"), ("ops_complaint_classifier", "medium"),
                   ("ops_email_router", "low"), ("ops_capacity_planner", "low")],
}
TYPES = ["ml_model", "ml_model", "ml_model", "rules", "llm"]


class DemoClock:
    """Simulated time: set to a day by the scenario, then a few seconds per reading."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def set(self, when: datetime) -> None:
        self.now = max(self.now, when)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=7)
        return self.now


@dataclass
class Scenario:
    """What the demo made: the ledger, keys and a few notable snapshots."""

    ledger: Ledger
    log_key: LogKey
    clock: DemoClock
    keys: dict[str, ActorKey]
    notes: dict[str, str] = field(default_factory=dict)
    quarter_sizes: dict[str, int] = field(default_factory=dict)


def _as(ledger: Ledger, key: ActorKey) -> Ledger:
    ledger.signer = key
    return ledger


def run_year(ledger: Ledger, log_key: LogKey, admin: ActorKey, clock: DemoClock,
             tick: Callable[[int, int], None]) -> Scenario:
    """Write the whole year into ``ledger`` (already created with ``admin``)."""
    rng = random.Random(2025)
    keys = {"admin": admin, "ml": ActorKey.generate("ml-pipeline"),
            "batch": ActorKey.generate("batch-pipeline"),
            "validation": ActorKey.generate("validation-team")}
    sc = Scenario(ledger, log_key, clock, keys)
    for who in ("ml", "batch", "validation"):
        _as(ledger, admin).grant(keys[who].vkey, role="writer")
    names: list[str] = []
    tiers: dict[str, str] = {}
    for g, (group, models) in enumerate(PORTFOLIO.items()):
        writer = keys["ml"] if g % 2 == 0 else keys["batch"]
        for i, (name, tier) in enumerate(models):
            clock.set(START + timedelta(days=g, hours=i))
            _as(ledger, writer).register(
                name=name, owner=f"{group}-analytics", model_type=TYPES[i % len(TYPES)],
                tier=tier, purpose=f"{name.replace('_', ' ')} for the {group} portfolio",
                metadata={"framework": ["xgboost", "pytorch", "sklearn", "spark"][i % 4],
                          "business_line": group})
            names.append(name)
            tiers[name] = tier
        _as(ledger, writer).register_group(
            name=f"{group}_suite", owner=f"{group}-analytics", tier="high",
            purpose=f"All {group} models, validated together", members=[m for m, _ in models])
    _onboard(sc, names, tiers)
    for month in range(1, 13):
        tick(month, 12)
        _month(sc, month, names, rng)
        if month in (3, 6, 9, 12):
            sc.quarter_sizes[f"Q{month // 3}"] = ledger.size
    return sc


# The high-risk model whose human oversight was never recorded (an EU AI Act finding), and
# the one whose June monitoring review was missed (a NIST AI RMF finding).
NO_OVERSIGHT = "pricing_mortgage_rate"
MISSED_REVIEW = "aml_customer_risk_rating"


def _onboard(sc: Scenario, names: list[str], tiers: dict[str, str]) -> None:
    """The second week of January: the validation team's initial validation and risk
    assessment of every model; for high-risk ones also technical documentation, record
    keeping and human oversight (the EU AI Act's evidence), except ``NO_OVERSIGHT``'s."""
    led, k = sc.ledger, sc.keys
    for i, name in enumerate(names):
        sc.clock.set(START + timedelta(days=7, minutes=10 * i))
        _as(led, k["validation"]).record(name, "risk_assessed", {
            "assessment": f"RA-2025-{name}", "inherent_risk": tiers[name]})
        _as(led, k["validation"]).record(name, "validated", {
            "result": "pass", "validator": "model-risk-validation",
            "report": f"MRV-2025-INIT-{name}", "scope": "initial"})
        if tiers[name] != "high":
            continue
        _as(led, k["admin"]).record(name, "documented", {
            "document": f"docs://model-cards/{name}/v1"})
        _as(led, k["admin"]).record(name, "logging_verified", {
            "retention_days": 3650, "sink": "siem://model-decisions"})
        if name != NO_OVERSIGHT:
            _as(led, k["admin"]).record(name, "oversight_assigned", {
                "overseer": f"{name.split('_')[0]}-model-owner", "can_override": True})


def _day(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2025, month, min(day, 28), hour, 0, tzinfo=timezone.utc)


def _month(sc: Scenario, month: int, names: list[str], rng: random.Random) -> None:
    led, k, clock = sc.ledger, sc.keys, sc.clock
    retired = sc.notes.get("retired")
    live = [n for n in names if n != retired]
    if month == 7:  # the batch pipeline's laptop was lost: revoke, then a new key
        clock.set(_day(7, 1, 8))
        _as(led, k["admin"]).revoke("batch-pipeline", reason="key stored on a lost laptop")
        k["batch"] = ActorKey.generate("batch-pipeline")
        _as(led, k["admin"]).grant(k["batch"].vkey, role="writer")
    for name in rng.sample(live, 9):
        clock.set(_day(month, rng.randrange(2, 20), rng.randrange(8, 18)))
        writer = k["ml"] if rng.random() < 0.6 else k["batch"]
        snap = _as(led, writer).record(name, "retrained", {
            "auc": round(rng.uniform(0.78, 0.97), 4), "rows": rng.randrange(50_000, 9_000_000),
            "training_data": f"lake://curated/{name}/2025-{month:02d}"})
        if rng.random() < 0.5:
            clock.set(_day(month, 22, 15))
            ticket = f"CHG-{rng.randrange(10**5):05d}"
            _as(led, writer).record(name, "deployed", {"environment": "production",
                                                       "change_ticket": ticket})
            _as(led, writer).tag(name, "production", snapshot=snap.snapshot_hash)
    if month % 3 == 0:  # quarterly independent validation of the high-tier models
        for name in live:
            state = led.inventory_at().get(name)
            if state is None or state.tier != "high" or state.model_type == "group":
                continue
            clock.set(_day(month, 25, rng.randrange(9, 17)))
            finding = "pass" if rng.random() < 0.85 else "pass with findings"
            if month == 6 and name == "credit_pd_retail":  # fails; deployed anyway in July
                _as(led, k["validation"]).record(name, "validation_failed", {
                    "result": "fail", "validator": "model-risk-validation",
                    "report": f"MRV-2025-Q2-{name}",
                    "issues": "PD calibration drifts on the 2024 vintage"})
            else:
                _as(led, k["validation"]).record(name, "validated", {
                    "result": finding, "validator": "model-risk-validation",
                    "report": f"MRV-2025-Q{month // 3}-{name}"})
            if month % 6 == 0 and name != MISSED_REVIEW:
                _as(led, k["validation"]).record(name, "monitoring_reviewed", {
                    "period": f"2025-H{month // 6}", "drift": "within limits"})
    if month == 4:  # a pipeline validates the model it trains: not independent
        clock.set(_day(4, 26, 11))
        _as(led, k["ml"]).record("fraud_merchant_risk", "validated", {
            "result": "pass", "validator": "ml-pipeline", "report": "self-check"})
    if month == 7:  # the model that failed validation in June goes to production
        clock.set(_day(7, 10, 14))
        snap = _as(led, k["batch"]).record("credit_pd_retail", "retrained", {
            "auc": 0.83, "rows": 4_200_000, "training_data": "lake://curated/credit_pd/2025-07"})
        _as(led, k["batch"]).record("credit_pd_retail", "deployed", {
            "environment": "production", "change_ticket": "CHG-07110"})
        _as(led, k["batch"]).tag("credit_pd_retail", "production", snapshot=snap.snapshot_hash)
    if month == 8:  # a new high-risk model, deployed the week it was registered
        clock.set(_day(8, 4, 9))
        _as(led, k["ml"]).register(
            name="fraud_bnpl_risk", owner="fraud-analytics", model_type="ml_model",
            tier="high", purpose="buy-now-pay-later fraud risk for the fraud portfolio",
            metadata={"framework": "xgboost", "business_line": "fraud"})
        snap = _as(led, k["ml"]).record("fraud_bnpl_risk", "retrained", {
            "auc": 0.88, "rows": 310_000, "training_data": "lake://curated/bnpl/2025-08"})
        clock.set(_day(8, 6, 16))
        _as(led, k["ml"]).record("fraud_bnpl_risk", "deployed", {
            "environment": "production", "change_ticket": "CHG-08031"})
        _as(led, k["ml"]).tag("fraud_bnpl_risk", "production", snapshot=snap.snapshot_hash)
    if month == 5:
        clock.set(_day(5, 14, 3))
        snap = _as(led, k["ml"]).record("fraud_card_txn", "incident", {
            "severity": "high", "summary": "false-positive spike after feature outage",
            "ticket": "INC-20514"})
        sc.notes["incident"] = snap.snapshot_hash
        clock.set(_day(5, 14, 9))
        _as(led, k["ml"]).update("fraud_card_txn", status="under_review")
        clock.set(_day(5, 20, 11))
        _as(led, k["ml"]).update("fraud_card_txn", status="active")
    if month == 8:
        clock.set(_day(8, 29, 16))
        _as(led, k["batch"]).retire("credit_legacy_scorecard",
                                   reason="replaced by credit_application_score")
        _as(led, k["batch"]).remove_member("credit_suite", "credit_legacy_scorecard",
                                           reason="retired")
        sc.notes["retired"] = "credit_legacy_scorecard"
    if month == 10:
        clock.set(_day(10, 8, 10))
        _as(led, k["ml"]).update("pricing_fx_spread", tier="medium",
                                 purpose="FX spread pricing, now customer-facing")
