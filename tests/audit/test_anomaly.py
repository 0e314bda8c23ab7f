"""Anomaly rules: pure, time from the events."""

from __future__ import annotations

from datetime import timedelta

from limen.audit.anomaly import AnomalyConfig, AnomalyDetector, Rule, Severity, usual_density_ratio
from limen.audit.event import Event, EventKind
from limen.thresholds import AUDIT_FAILS_PER_METHOD, AUDIT_FAILS_TOTAL, AUDIT_UNUSUAL_HOUR_MIN_HISTORY

from .conftest import T0, attempt, minutes


def _rules(findings: list) -> list[Rule]:
    return [f.rule for f in findings]


def test_consecutive_failures_of_one_method_fire_at_its_threshold() -> None:
    det = AnomalyDetector()
    limit = AUDIT_FAILS_PER_METHOD["pin"]
    fired = [_rules(det.observe(i, attempt(method="pin", at=T0 + minutes(i * 10)))) for i in range(limit)]
    assert all(Rule.FAILURES_METHOD not in f for f in fired[:-1])
    assert Rule.FAILURES_METHOD in fired[-1]


def test_accept_resets_the_method_counter() -> None:
    det = AnomalyDetector()
    limit = AUDIT_FAILS_PER_METHOD["pin"]
    for i in range(limit - 1):
        det.observe(i, attempt(method="pin", at=T0 + minutes(i * 10)))
    det.observe(50, attempt("accept", method="pin", at=T0 + minutes(100)))
    assert Rule.FAILURES_METHOD not in _rules(det.observe(51, attempt(method="pin", at=T0 + minutes(110))))


def test_consecutive_failures_in_total_across_methods() -> None:
    det = AnomalyDetector(AnomalyConfig(fails_per_method={"face": 100, "pin": 100}, multimodal_min_methods=99))
    findings = []
    for i in range(AUDIT_FAILS_TOTAL):
        findings = det.observe(i, attempt(method="face" if i % 2 else "pin", at=T0 + minutes(i * 30)))
    assert _rules(findings) == [Rule.FAILURES_TOTAL]
    assert findings[0].events == tuple(range(AUDIT_FAILS_TOTAL))


def test_benign_rejections_do_not_count() -> None:
    det = AnomalyDetector()
    for i in range(20):
        assert det.observe(i, attempt(reason="no_face", at=T0 + minutes(i))) == []


def test_failures_on_several_modalities_in_a_short_window() -> None:
    det = AnomalyDetector()
    det.observe(0, attempt(method="face", at=T0))
    det.observe(1, attempt(method="fingerprint", at=T0 + timedelta(seconds=20)))
    findings = det.observe(2, attempt(method="pin", at=T0 + timedelta(seconds=40)))
    multi = [f for f in findings if f.rule is Rule.MULTIMODAL_FAILURES]
    assert multi and multi[0].events == (0, 1, 2)


def test_failures_on_several_modalities_spread_out_do_not_fire() -> None:
    det = AnomalyDetector()
    rules = []
    for i, method in enumerate(["face", "fingerprint", "pin"]):
        rules += _rules(det.observe(i, attempt(method=method, at=T0 + minutes(i * 60))))
    assert Rule.MULTIMODAL_FAILURES not in rules


def test_presentation_attack_fires_with_scores() -> None:
    det = AnomalyDetector()
    findings = det.observe(0, attempt(reason="pad_failed", pad="attack", scores={"pad.depth": 0.1}))
    pad = [f for f in findings if f.rule is Rule.PRESENTATION_ATTACK]
    assert pad and pad[0].data["scores"] == {"pad.depth": 0.1}


def test_unusual_hour_needs_history_then_fires_for_that_user_only() -> None:
    det = AnomalyDetector()
    day = timedelta(days=1)
    # u1 always comes home around 18:00; before enough history nothing fires even at 03:00
    early = det.observe(0, attempt("accept", actor="u1", at=T0.replace(hour=3)))
    assert Rule.UNUSUAL_HOUR not in _rules(early)
    for i in range(AUDIT_UNUSUAL_HOUR_MIN_HISTORY):
        det.observe(i + 1, attempt("accept", actor="u1", at=T0.replace(hour=18, minute=i) + i * day))
    usual = det.observe(100, attempt("accept", actor="u1", at=T0.replace(hour=18, minute=30) + 40 * day))
    assert Rule.UNUSUAL_HOUR not in _rules(usual)
    night = det.observe(101, attempt("accept", actor="u1", at=T0.replace(hour=10, minute=5) + 41 * day))
    unusual = [f for f in night if f.rule is Rule.UNUSUAL_HOUR]
    assert unusual and unusual[0].subject == "u1" and unusual[0].severity is Severity.INFO
    other = det.observe(102, attempt("accept", actor="u2", at=T0.replace(hour=3) + 42 * day))
    assert Rule.UNUSUAL_HOUR not in _rules(other)


def test_time_of_day_density_is_circular() -> None:
    import math

    near_midnight = [2 * math.pi * (23.9 / 24)] * 10
    assert usual_density_ratio(2 * math.pi * (0.1 / 24), near_midnight, 8.0) > 1.0
    assert usual_density_ratio(math.pi, near_midnight, 8.0) < 0.01


def test_remote_command_from_unknown_device() -> None:
    det = AnomalyDetector()
    ev = Event(EventKind.UNLOCK_ATTEMPT, T0, outcome="reject", reason="remote_not_authorised", source="remote",
               data={"method": "remote", "device": "phone-x", "device_known": False})
    remote = [f for f in det.observe(0, ev) if f.rule is Rule.REMOTE_UNKNOWN]
    assert remote and remote[0].subject == "phone-x"
    known = Event(EventKind.UNLOCK_ATTEMPT, T0, outcome="accept", reason="granted", source="remote",
                  data={"method": "remote", "device": "phone-a", "device_known": True})
    assert Rule.REMOTE_UNKNOWN not in _rules(det.observe(1, known))


def test_mechanical_key_duress_and_tamper() -> None:
    det = AnomalyDetector()
    key = Event(EventKind.LOCK_STATE, T0, reason="mechanical_key", data={"state": "unlocked"})
    assert _rules(det.observe(0, key)) == [Rule.MECHANICAL_KEY]
    duress = attempt("accept", method="pin", reason="duress", duress=True)
    d = [f for f in det.observe(1, duress) if f.rule is Rule.DURESS]
    assert d and d[0].severity is Severity.CRITICAL and d[0].data["silent"] is True
    tamper = Event(EventKind.TAMPER, T0, reason="case_opened", source="tamper:case")
    t = det.observe(2, tamper)
    assert _rules(t) == [Rule.TAMPER] and t[0].severity is Severity.CRITICAL


def test_door_forced_when_opened_while_locked() -> None:
    det = AnomalyDetector()
    det.observe(0, Event(EventKind.LOCK_STATE, T0, data={"state": "locked"}))
    f = det.observe(1, Event(EventKind.DOOR_STATE, T0 + minutes(1), data={"state": "open"}))
    assert _rules(f) == [Rule.DOOR_FORCED]


def test_door_opened_after_unlock_is_not_forced() -> None:
    det = AnomalyDetector()
    det.observe(0, Event(EventKind.LOCK_STATE, T0, data={"state": "locked"}))
    det.observe(1, Event(EventKind.LOCK_STATE, T0 + minutes(1), data={"state": "unlocked"}))
    assert det.observe(2, Event(EventKind.DOOR_STATE, T0 + minutes(1), data={"state": "open"})) == []


def test_door_left_open_fires_once_per_opening() -> None:
    det = AnomalyDetector(AnomalyConfig(door_left_open_s=60))
    det.observe(0, Event(EventKind.DOOR_STATE, T0, data={"state": "open"}))
    assert det.tick(T0 + timedelta(seconds=30)) == []
    first = det.tick(T0 + timedelta(seconds=61))
    assert _rules(first) == [Rule.DOOR_LEFT_OPEN] and first[0].events == (0,)
    assert det.tick(T0 + timedelta(seconds=200)) == []
    det.observe(1, Event(EventKind.DOOR_STATE, T0 + minutes(5), data={"state": "closed"}))
    assert det.tick(T0 + minutes(30)) == []


def test_clock_jumping_backwards_never_breaks_windows() -> None:
    det = AnomalyDetector()
    det.observe(0, attempt(method="face", at=T0 + minutes(60)))
    det.observe(1, attempt(method="pin", at=T0))  # the clock jumped back an hour
    findings = det.observe(2, attempt(method="fingerprint", at=T0 + timedelta(seconds=5)))
    assert Rule.MULTIMODAL_FAILURES in _rules(findings)  # treated as happening now, not an hour ago


def test_jammed_lock_fires() -> None:
    det = AnomalyDetector()
    findings = det.observe(0, Event(EventKind.LOCK_STATE, T0, reason="jammed", data={"state": "jammed"}))
    assert _rules(findings) == [Rule.LOCK_JAMMED]
    assert det.observe(1, Event(EventKind.LOCK_STATE, T0, data={})) == []


def test_door_opened_right_after_the_mechanical_key_is_not_forced() -> None:
    """The key retracts the bolt by hand: the relay, and so the recorded lock state, stays "locked"."""
    det = AnomalyDetector(AnomalyConfig(key_door_window_s=60))
    det.observe(0, Event(EventKind.LOCK_STATE, T0, data={"state": "locked"}))
    assert _rules(det.observe(1, attempt("accept", method="key", at=T0))) == [Rule.MECHANICAL_KEY]
    assert det.observe(2, Event(EventKind.DOOR_STATE, T0 + timedelta(seconds=20), data={"state": "open"})) == []
    det.observe(3, Event(EventKind.DOOR_STATE, T0 + timedelta(seconds=40), data={"state": "closed"}))
    later = det.observe(4, Event(EventKind.DOOR_STATE, T0 + minutes(5), data={"state": "open"}))
    assert _rules(later) == [Rule.DOOR_FORCED]  # the key's window has passed: locked and opened is forced


def test_a_refused_key_leaves_the_forced_door_rule_alone() -> None:
    det = AnomalyDetector(AnomalyConfig(key_door_window_s=60))
    det.observe(0, Event(EventKind.LOCK_STATE, T0, data={"state": "locked"}))
    det.observe(1, attempt("reject", method="key", at=T0, reason="lockdown"))
    f = det.observe(2, Event(EventKind.DOOR_STATE, T0 + timedelta(seconds=5), data={"state": "open"}))
    assert _rules(f) == [Rule.DOOR_FORCED]
