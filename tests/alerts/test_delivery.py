"""The delivery worker drains a real store's outbox to real local receivers: retries with
backoff, dead letters, one notifier never holding up another, secrets kept out of the outbox
and the logs, and firing/resolved order kept per alert group."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from receivers import free_port, make_record

from mlpulse.alerts.delivery import DeliveryWorker
from mlpulse.errors import ConfigError
from mlpulse.store import alerts as outbox
from mlpulse.store.database import Store

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def enqueue(store: Store, notifier: str, key: str, record: dict, when: datetime = T0) -> None:
    with store.write() as conn:
        outbox.enqueue(conn, notifier, key, record, when)


def rows(store: Store) -> dict[str, dict[str, Any]]:
    """The outbox by notifier and kind: ``{"ops/firing": {"status": ..., ...}}``."""
    frame = outbox.outbox(store)
    return {f"{r.notifier}/{r.kind}": r._asdict() for r in frame.itertuples(index=False)}


def worker(store: Store, notifiers: list[dict], **options: Any) -> DeliveryWorker:
    return DeliveryWorker(store, lambda: notifiers, jitter=0.0, **options)


class TestRetries:
    """Failed sends are retried with exponential backoff, and delivered exactly once."""

    def test_500_then_200(self, store: Store, receiver: Any) -> None:
        hook = receiver([500, 503])
        w = worker(store, [{"name": "ops", "type": "webhook", "url": hook.url}])
        enqueue(store, "ops", "k1", make_record())
        assert w.run_once(at(0)) == 0
        row = rows(store)["ops/firing"]
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert "HTTP 500" in row["last_error"]
        assert w.run_once(at(0.9)) == 0 and len(hook.requests) == 1  # backing off 1s
        assert w.run_once(at(1.0)) == 0 and len(hook.requests) == 2  # 503; next in 2s
        assert w.run_once(at(2.9)) == 0 and len(hook.requests) == 2
        assert w.run_once(at(3.0)) == 1 and len(hook.requests) == 3
        for later in (4, 60, 3600):
            assert w.run_once(at(later)) == 0
        assert len(hook.requests) == 3  # delivered once
        row = rows(store)["ops/firing"]
        assert (row["status"], row["attempts"]) == ("sent", 3)

    def test_backoff_doubles_up_to_the_cap_with_jitter_below(self) -> None:
        w = DeliveryWorker(None, list, backoff=(1.0, 2.0, 300.0), jitter=0.2)
        for attempts, full in [(1, 1), (2, 2), (5, 16), (9, 256), (10, 300), (50, 300)]:
            delays = [w.delay(attempts) for _ in range(50)]
            assert all(0.8 * full <= d <= full for d in delays)
            assert len(set(delays)) > 1  # jittered

    def test_dead_letter_after_max_attempts(
        self, store: Store, receiver: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        hook = receiver(default=500)
        w = worker(store, [{"name": "ops", "type": "webhook", "url": hook.url}], max_attempts=3)
        enqueue(store, "ops", "k1", make_record())
        caplog.set_level(logging.INFO, logger="mlpulse")
        for second in (0, 1, 3, 7, 100, 1000):
            w.run_once(at(second))
        assert len(hook.requests) == 3
        row = rows(store)["ops/firing"]
        assert (row["status"], row["attempts"]) == ("failed", 3)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "given up after 3 attempts" in warnings[0].getMessage()
        assert "HTTP 500" in warnings[0].getMessage()

    def test_client_error_is_not_retried(self, store: Store, receiver: Any) -> None:
        hook = receiver(default=400)
        w = worker(store, [{"name": "ops", "type": "webhook", "url": hook.url}])
        enqueue(store, "ops", "k1", make_record())
        w.run_once(at(0))
        w.run_once(at(100))
        row = rows(store)["ops/firing"]
        assert (row["status"], row["attempts"], len(hook.requests)) == ("failed", 1, 1)

    def test_max_attempts_is_checked(self, store: Store) -> None:
        with pytest.raises(ConfigError, match="max_attempts"):
            DeliveryWorker(store, list, max_attempts=0)


class TestIsolation:
    """A notifier that is down or hangs holds up only its own notifications."""

    def test_dead_notifier_does_not_block_a_healthy_one(self, store: Store, receiver: Any) -> None:
        hook = receiver()
        dead = f"http://127.0.0.1:{free_port()}"
        w = worker(
            store,
            [
                {"name": "dead", "type": "webhook", "url": dead},
                {"name": "ok", "type": "slack", "url": hook.url},
            ],
        )
        for i in range(3):
            enqueue(store, "dead", f"d{i}", make_record(fingerprint=f"{i:016x}"))
        enqueue(store, "ok", "o1", make_record())
        enqueue(store, "ok", "o2", make_record("resolved"))
        assert w.run_once(at(0)) == 2
        assert [r.json["text"].split()[0] for r in hook.requests] == ["[FIRING]", "[RESOLVED]"]
        frame = outbox.outbox(store)
        dead_rows = frame[frame.notifier == "dead"]
        assert list(dead_rows.status) == ["pending"] * 3
        assert list(dead_rows.attempts) == [1, 1, 1]
        # tried once; the other two not tried in that round (the receiver was down)
        assert dead_rows.last_error.str.contains("not tried, receiver down").sum() == 2

    def test_hanging_receiver_is_cut_by_its_timeout(self, store: Store, receiver: Any) -> None:
        slow, hook = receiver(hang=30), receiver()
        notifiers = [
            {"name": "slow", "type": "webhook", "url": slow.url, "timeout": 1.5},
            {"name": "ok", "type": "webhook", "url": hook.url},
        ]
        w = DeliveryWorker(store, lambda: notifiers, interval=0.05, jitter=0.0)
        enqueue(store, "slow", "s1", make_record(), datetime.now(UTC))
        enqueue(store, "ok", "o1", make_record(), datetime.now(UTC))
        start = time.monotonic()
        w.start()
        try:
            hook.wait_for(1, timeout=5)
            first = time.monotonic() - start
            slow.wait_for(1, timeout=5)
            # queued while the slow one is still sending: delivered without waiting for it
            enqueue(store, "ok", "o2", make_record("resolved"), datetime.now(UTC))
            hook.wait_for(2, timeout=5)
            second = time.monotonic() - start
            deadline = time.monotonic() + 10
            while rows(store)["slow/firing"]["attempts"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            cut = time.monotonic() - start
        finally:
            assert w.stop(timeout=10)
        assert first < 1.5 and second < 1.5, (first, second)
        assert 1.4 < cut < 6, cut
        row = rows(store)["slow/firing"]
        assert row["status"] == "pending" and "timed out after 1.5s" in row["last_error"]
        assert len(slow.requests) == 1


class TestSecrets:
    """Secrets from the environment never reach the outbox or the logs."""

    def test_secret_not_in_outbox_or_logs(
        self, store: Store, receiver: Any, env: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        key, token = "pd-R0UTING-k3y-0123456789", "url-t0ken-9876"
        env(PD_KEY=key, HOOK_TOKEN=token)
        hook = receiver(default=500, echo=True)  # quotes the request (routing key and all)
        config = {
            "name": "pager",
            "type": "pagerduty",
            "routing_key": "${PD_KEY}",
            "url": f"{hook.url}/?token=${{HOOK_TOKEN}}",
        }
        w = worker(store, [config], max_attempts=2)
        enqueue(store, "pager", "k1", make_record())
        caplog.set_level(logging.DEBUG)
        w.run_once(at(0))
        w.run_once(at(5))
        assert len(hook.requests) == 2 and hook.requests[0].json["routing_key"] == key
        row = rows(store)["pager/firing"]
        assert row["status"] == "failed" and "HTTP 500" in row["last_error"]
        assert "<redacted>" in row["last_error"]
        assert "given up" in caplog.text and "next try" in caplog.text
        for secret in (key, token):
            assert secret not in row["last_error"]
            assert secret not in caplog.text

    def test_missing_variable_gives_up_naming_it(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("NOT_SET_PD_KEY", raising=False)
        config = {"name": "pager", "type": "pagerduty", "routing_key": "${NOT_SET_PD_KEY}"}
        w = worker(store, [config])
        enqueue(store, "pager", "k1", make_record())
        w.run_once(at(0))
        row = rows(store)["pager/firing"]
        assert row["status"] == "failed" and row["attempts"] == 1
        assert (
            "environment variable 'NOT_SET_PD_KEY' (field 'routing_key') is not set"
            in (row["last_error"])
        )


class TestOutbox:
    """What the worker records for notifications it cannot or need not send."""

    def test_removed_notifier(self, store: Store) -> None:
        w = worker(store, [])
        enqueue(store, "gone", "k1", make_record())
        assert w.run_once(at(0)) == 0
        row = rows(store)["gone/firing"]
        assert row["status"] == "failed"
        assert row["last_error"] == "notifier 'gone' is not configured any more"

    def test_resolved_not_sent_when_send_resolved_is_false(
        self, store: Store, receiver: Any
    ) -> None:
        hook = receiver()
        config = {"name": "ops", "type": "webhook", "url": hook.url, "send_resolved": False}
        w = worker(store, [config])
        enqueue(store, "ops", "k1", make_record("resolved"))
        w.run_once(at(0))
        assert hook.requests == [] and rows(store)["ops/resolved"]["status"] == "sent"

    def test_resolved_never_overtakes_its_firing(self, store: Store, receiver: Any) -> None:
        """The trigger fails and backs off; the resolve of that alert, due sooner, waits for
        it (another alert of the same incident does not)."""
        hook = receiver([500])
        w = worker(
            store, [{"name": "pd", "type": "pagerduty", "routing_key": "k", "url": hook.url}]
        )
        enqueue(store, "pd", "fire", make_record(), at(0))
        enqueue(store, "pd", "resolve", make_record("resolved"), at(0.5))
        other = make_record(labels={"alertname": "x"}, fingerprint="9" * 16)
        enqueue(store, "pd", "other", other, at(0.5))  # another alert: not held back
        w.run_once(at(0.5))
        w.run_once(at(0.8))
        assert [r.json["event_action"] for r in hook.requests] == ["trigger", "trigger"]
        assert hook.requests[1].json["dedup_key"] == "9" * 16
        w.run_once(at(1.5))
        actions = [(r.json["event_action"], r.json["dedup_key"]) for r in hook.requests[2:]]
        assert actions == [("trigger", "0123456789abcdef"), ("resolve", "0123456789abcdef")]

    def test_thread_delivers_and_stops(self, store: Store, receiver: Any) -> None:
        hook = receiver()
        w = DeliveryWorker(
            store, lambda: [{"name": "ops", "type": "webhook", "url": hook.url}], interval=0.05
        )
        w.start()
        try:
            enqueue(store, "ops", "k1", make_record(), datetime.now(UTC))
            hook.wait_for(1)
        finally:
            assert w.stop(timeout=5)
        assert not w.running
        deadline = time.monotonic() + 5
        while rows(store)["ops/firing"]["status"] != "sent" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rows(store)["ops/firing"]["status"] == "sent"
