"""Notifiers against real receivers on 127.0.0.1: Alertmanager itself, an SMTP server
(aiosmtpd), and HTTP servers recording what webhook, Slack and PagerDuty notifiers POST."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from receivers import make_record, smtp_sink

from mlpulse.alerts.notifiers import (
    NotifierError,
    alertmanager_payload,
    email_message,
    pagerduty_payload,
    redact_config,
    send,
    slack_payload,
    validate_notifier,
    webhook_payload,
)
from mlpulse.errors import ConfigError, RuleError

#: The fields of Alertmanager's webhook v4 body and of each of its alerts.
V4_FIELDS = {
    "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
    "commonLabels", "commonAnnotations", "externalURL", "alerts",
}  # fmt: skip
V4_ALERT_FIELDS = {
    "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
}  # fmt: skip


def closed_port() -> int:
    from receivers import free_port

    return free_port()  # bound and released: nothing listens there


class TestValidate:
    """A notifier config is checked when it is loaded; errors name the notifier and field."""

    @pytest.mark.parametrize(
        "config,defaults",
        [
            ({"type": "webhook", "url": "http://h/x"}, {"timeout": 10.0, "headers": {}}),
            ({"type": "alertmanager", "url": "https://am:9093"}, {"send_resolved": True}),
            ({"type": "slack", "url": "${SLACK_URL}", "channel": "#ml"}, {"headers": {}}),
            ({"type": "pagerduty", "routing_key": "${PD_KEY}"}, {"timeout": 10.0}),
            ({"type": "email", "host": "mx", "to": "a@b.c"}, {"port": 25, "to": ["a@b.c"]}),
            ({"type": "email", "host": "mx", "to": ["a@b"], "starttls": True}, {"port": 587}),
            ({"type": "email", "host": "mx", "to": ["a@b"], "ssl": True}, {"port": 465}),
        ],
    )
    def test_valid_configs_get_defaults(self, config: dict, defaults: dict) -> None:
        out = validate_notifier({"name": "n", **config})
        assert out["name"] == "n" and out["type"] == config["type"]
        for key, value in defaults.items():
            assert out[key] == value
        for key, value in config.items():  # environment references are kept as written
            if isinstance(value, str) and "${" in value:
                assert out[key] == value

    @pytest.mark.parametrize(
        "config,message",
        [
            ({"type": "pagerduty"}, "notifier 'n': field 'routing_key' is required"),
            ({"type": "webhook"}, "notifier 'n': field 'url' is required"),
            ({"type": "email", "to": ["a@b"]}, "notifier 'n': field 'host' is required"),
            ({"type": "email", "host": "mx"}, "notifier 'n': field 'to' is required"),
            ({"type": "sms", "url": "http://h"}, "notifier 'n': field 'type' must be one of"),
            (
                {"type": "pagerduty", "routing_key": "k", "rouitng_key": "k"},
                "field 'rouitng_key' is not a field of a pagerduty notifier",
            ),
            ({"type": "webhook", "url": "ftp://h/x"}, "field 'url' must be an http://"),
            (
                {"type": "webhook", "url": "http://h", "timeout": "10"},
                "field 'timeout' must be a number",
            ),
            (
                {"type": "webhook", "url": "http://h", "timeout": 0},
                "field 'timeout' must be above 0",
            ),
            (
                {"type": "webhook", "url": "http://h", "send_resolved": "no"},
                "must be true or false",
            ),
            (
                {"type": "webhook", "url": "http://h", "headers": {"X-A": "1\r\nX-B: 2"}},
                "line breaks",
            ),
            (
                {"type": "webhook", "url": "http://h", "headers": {"X A": "1"}},
                "invalid header name",
            ),
            ({"type": "webhook", "url": "http://h/${TOKEN"}, "unclosed '${'"),
            ({"type": "webhook", "url": "http://h/${1X}"}, "invalid environment reference '${1X}'"),
            ({"type": "email", "host": "mx", "to": []}, "field 'to' must be an address"),
            (
                {"type": "email", "host": "mx", "to": ["oncall"]},
                "'oncall' is not an e-mail address",
            ),
            ({"type": "email", "host": "mx", "to": ["a@b"], "port": 70000}, "field 'port' must be"),
            (
                {"type": "email", "host": "mx", "to": ["a@b"], "ssl": True, "starttls": True},
                "field 'ssl' cannot be combined with 'starttls'",
            ),
            (
                {"type": "email", "host": "mx", "to": ["a@b"], "username": "u", "password": "p"},
                "field 'password' is only sent over TLS",
            ),
        ],
    )
    def test_invalid_configs_name_the_field(self, config: dict, message: str) -> None:
        with pytest.raises(RuleError) as info:
            validate_notifier({"name": "n", **config})
        assert message in str(info.value)
        assert isinstance(info.value, ConfigError)

    def test_name_is_required(self) -> None:
        with pytest.raises(RuleError, match="notifier \\(no name\\): field 'name' is required"):
            validate_notifier({"type": "webhook", "url": "http://h"})


class TestWebhook:
    """The webhook notifier POSTs Alertmanager's webhook v4 body."""

    def test_v4_body_field_by_field(self, receiver: Any, record: Any) -> None:
        hook = receiver()
        config = {
            "name": "ops",
            "type": "webhook",
            "url": f"{hook.url}/hook",
            "headers": {"X-Team": "ml"},
        }
        send(config, record())
        (request,) = hook.wait_for(1)
        assert request.method == "POST" and request.path == "/hook"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-team"] == "ml"
        body = request.json
        assert set(body) == V4_FIELDS
        assert body["version"] == "4"
        assert body["groupKey"] == "mlpulse/churn/incident-3"
        assert body["truncatedAlerts"] == 0
        assert body["status"] == "firing"
        assert body["receiver"] == "ops"
        assert body["groupLabels"] == {"alertname": "churn-accuracy-low", "model": "churn"}
        assert body["commonLabels"] == record()["alerts"][0]["labels"]
        assert body["commonAnnotations"] == record()["alerts"][0]["annotations"]
        assert body["externalURL"] == "http://127.0.0.1:8765"
        (alert,) = body["alerts"]
        assert set(alert) == V4_ALERT_FIELDS
        assert alert["fingerprint"] == "0123456789abcdef"
        assert alert["startsAt"] == "2026-01-01T06:10:00Z"
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
        assert alert["generatorURL"] == "http://127.0.0.1:8765/models/churn"

    def test_common_labels_and_truncation(self, record: Any) -> None:
        two = record()
        other = make_record(labels={"model": "fraud", "alertname": "x"}, fingerprint="f" * 16)
        two["alerts"] = two["alerts"] + other["alerts"] * 2
        body = webhook_payload({"name": "ops", "max_alerts": 1}, two)
        assert body["truncatedAlerts"] == 2 and len(body["alerts"]) == 1
        assert body["commonLabels"] == {"metric": "accuracy", "severity": "page", "version": "v1"}
        assert body["groupLabels"] == {}

    def test_resolved_skipped_when_send_resolved_is_false(self, receiver: Any, record: Any) -> None:
        hook = receiver()
        config = {"name": "ops", "type": "webhook", "url": hook.url, "send_resolved": False}
        send(config, record("resolved"))
        send(config, record("firing"))
        (request,) = hook.wait_for(1)
        time.sleep(0.05)
        assert [r.json["status"] for r in hook.requests] == ["firing"]

    def test_nan_value_is_valid_json(self, receiver: Any, record: Any) -> None:
        hook = receiver()
        note = record()
        note["alerts"][0]["value"] = float("nan")
        send({"name": "ops", "type": "pagerduty", "routing_key": "k", "url": hook.url}, note)
        assert hook.wait_for(1)[0].json["event_action"] == "trigger"


class TestErrors:
    """Failures raise NotifierError naming the notifier and reason, never a secret."""

    def test_non_2xx_is_an_error(self, receiver: Any, record: Any) -> None:
        hook = receiver([503, 400, 429])
        config = {"name": "ops", "type": "webhook", "url": hook.url}
        expected = [(503, True), (400, False), (429, True)]
        for status, retryable in expected:
            with pytest.raises(NotifierError) as info:
                send(config, record())
            assert f"notifier 'ops' (webhook, {hook.url}): HTTP {status}" in str(info.value)
            assert info.value.retryable is retryable

    def test_connection_refused(self, record: Any) -> None:
        port = closed_port()
        with pytest.raises(
            NotifierError, match=f"notifier 'ops' \\(webhook, http://127.0.0.1:{port}\\)"
        ) as info:
            send({"name": "ops", "type": "webhook", "url": f"http://127.0.0.1:{port}/x"}, record())
        assert info.value.retryable

    def test_hanging_receiver_is_cut_by_the_timeout(self, receiver: Any, record: Any) -> None:
        hook = receiver(hang=30)
        start = time.monotonic()
        with pytest.raises(NotifierError, match="timed out after 0.3s"):
            send({"name": "ops", "type": "webhook", "url": hook.url, "timeout": 0.3}, record())
        assert time.monotonic() - start < 3

    def test_missing_environment_variable_is_named(self, record: Any, monkeypatch: Any) -> None:
        monkeypatch.delenv("PD_ROUTING_KEY", raising=False)
        config = {"name": "pager", "type": "pagerduty", "routing_key": "${PD_ROUTING_KEY}"}
        with pytest.raises(NotifierError) as info:
            send(config, record())
        assert str(info.value) == (
            "notifier 'pager': environment variable 'PD_ROUTING_KEY' (field 'routing_key') is not set"
        )
        assert not info.value.retryable

    def test_secrets_never_in_errors_or_logs(
        self, receiver: Any, record: Any, env: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A receiver echoing the request, a token in the URL's query and a header value: the
        error and every log line (httpx logs URLs at INFO) show none of them."""
        key, token, bearer = "R0UTINGKEY0123456789", "qs-t0ken-abcdef", "hdr-s3cret-xyz"
        env(PD_KEY=key, HOOK_TOKEN=token, BEARER=bearer)
        caplog.set_level(logging.DEBUG)
        hook = receiver(default=400, echo=True)
        config = {
            "name": "pager",
            "type": "pagerduty",
            "routing_key": "${PD_KEY}",
            "url": f"{hook.url}/?token=${{HOOK_TOKEN}}",
            "headers": {"Authorization": "Bearer ${BEARER}"},
        }
        with pytest.raises(NotifierError) as info:
            send(config, record())
        (request,) = hook.wait_for(1)
        assert request.json["routing_key"] == key  # expanded where it is sent
        assert request.headers["authorization"] == f"Bearer {bearer}"
        assert request.path == f"/v2/enqueue?token={token}"
        message = str(info.value)
        assert "HTTP 400" in message and "<redacted>" in message  # the echo, scrubbed
        assert "HTTP Request" in caplog.text  # httpx did log the request...
        for secret in (key, token, bearer):  # ...without the secrets
            assert secret not in message
            assert secret not in caplog.text

    def test_literal_secret_fields_are_redacted_too(self, receiver: Any, record: Any) -> None:
        hook = receiver(default=400, echo=True)
        config = {
            "name": "p",
            "type": "pagerduty",
            "routing_key": "literal-key-1234",
            "url": hook.url,
        }
        with pytest.raises(NotifierError) as info:
            send(config, record())
        assert "literal-key-1234" not in str(info.value)

    def test_slack_url_path_is_never_shown(self, record: Any) -> None:
        port = closed_port()
        url = f"http://127.0.0.1:{port}/services/T000/B000/XXXXSECRET"
        with pytest.raises(NotifierError) as info:
            send({"name": "chat", "type": "slack", "url": url}, record())
        assert "XXXXSECRET" not in str(info.value) and f"127.0.0.1:{port}" in str(info.value)


class TestAlertmanager:
    """A real Alertmanager receives the alerts, and routes them to its own webhook."""

    def test_firing_then_resolved(self, alertmanager: Any, record: Any) -> None:
        am, hook = alertmanager
        config = {"name": "am", "type": "alertmanager", "url": am.url}
        labels = {"alertname": "am-firing-resolved", "team-name": "ml"}
        firing = record(labels=labels)
        send(config, firing)
        (found,) = [a for a in am.alerts() if a["labels"]["alertname"] == "am-firing-resolved"]
        expected = {k: v for k, v in firing["alerts"][0]["labels"].items() if k != "team-name"}
        assert found["labels"] == {**expected, "team_name": "ml"}  # a valid label name
        assert found["annotations"] == firing["alerts"][0]["annotations"]
        assert found["status"]["state"] == "active"
        assert found["startsAt"].startswith("2026-01-01T06:10:00")
        assert found["generatorURL"] == "http://127.0.0.1:8765/models/churn"
        assert found["receivers"] == [{"name": "hook"}]

        # Alertmanager notifies its own webhook with the v4 body our webhook notifier mimics
        routed = self._wait(hook, "am-firing-resolved", "firing")
        assert set(routed) == set(webhook_payload({"name": "x"}, firing)) == V4_FIELDS
        assert set(routed["alerts"][0]) == V4_ALERT_FIELDS
        assert routed["alerts"][0]["annotations"] == firing["alerts"][0]["annotations"]

        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        send(config, record("resolved", labels=labels, ends=now))
        assert not [a for a in am.alerts() if a["labels"]["alertname"] == "am-firing-resolved"]
        resolved = self._wait(hook, "am-firing-resolved", "resolved")
        assert resolved["alerts"][0]["endsAt"].startswith(now[:19])

    def test_bad_alert_is_not_retried(self, alertmanager: Any, record: Any) -> None:
        am, _ = alertmanager
        empty = record()
        empty["alerts"][0]["labels"] = {}
        with pytest.raises(NotifierError, match="HTTP 400") as info:
            send({"name": "am", "type": "alertmanager", "url": am.url}, empty)
        assert not info.value.retryable

    def test_payload_shape(self, record: Any) -> None:
        (firing,) = alertmanager_payload({}, record())
        assert "endsAt" not in firing  # Alertmanager times it out unless sent again
        (resolved,) = alertmanager_payload({}, record("resolved"))
        assert resolved["endsAt"] == "2026-01-01T08:00:00Z"

    @staticmethod
    def _wait(hook: Any, alertname: str, status: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for request in list(hook.requests):
                body = request.json
                if body["status"] == status and body["commonLabels"].get("alertname") == alertname:
                    return dict(body)
            time.sleep(0.05)
        raise AssertionError(f"Alertmanager did not send {status} {alertname} to its webhook")


class TestSlack:
    """Slack gets a title, and an attachment coloured by status."""

    def test_firing_and_resolved(self, receiver: Any, record: Any) -> None:
        hook = receiver()
        config = {
            "name": "chat",
            "type": "slack",
            "url": f"{hook.url}/services/T/B/X",
            "channel": "#ml",
        }
        send(config, record())
        send(config, record("resolved"))
        firing, resolved = (r.json for r in hook.wait_for(2))
        assert hook.requests[0].path == "/services/T/B/X"
        assert firing["text"] == "[FIRING] churn-accuracy-low (churn)"
        assert firing["channel"] == "#ml"
        (attachment,) = firing["attachments"]
        assert attachment["color"] == "#d63232"
        assert attachment["title"] == "churn-accuracy-low"
        assert attachment["title_link"] == "http://127.0.0.1:8765/models/churn"
        # Slack's control characters are escaped: "<" would start a link
        assert attachment["text"] == (
            "churn accuracy 0.71 &lt; 0.8\naccuracy over the last hour fell below 0.8"
        )
        fields = {f["title"]: f["value"] for f in attachment["fields"]}
        assert fields == {
            "Model": "churn", "Metric": "accuracy", "Value": "0.71", "Threshold": "0.8",
            "Severity": "page",
        }  # fmt: skip
        assert attachment["ts"] == 1767247800  # 2026-01-01T06:10:00Z
        assert resolved["text"] == "[RESOLVED] churn-accuracy-low (churn)"
        assert resolved["attachments"][0]["color"] == "#2eb886"
        assert resolved["attachments"][0]["ts"] == 1767254400  # resolved at 08:00

    def test_value_from_the_alert_when_not_annotated(self, record: Any) -> None:
        note = record(annotations={"value": "", "threshold": ""})
        fields = {
            f["title"]: f["value"] for f in slack_payload({}, note)["attachments"][0]["fields"]
        }
        assert fields["Value"] == "0.71" and fields["Threshold"] == "0.8"


class TestPagerDuty:
    """PagerDuty Events API v2: trigger, then resolve with the same dedup_key."""

    def test_trigger_then_resolve(self, receiver: Any, record: Any, env: Any) -> None:
        env(PD_ROUTING_KEY="e93facc04764012d7bfb002500d5d1a6")
        hook = receiver([202, 202])
        config = {
            "name": "pager",
            "type": "pagerduty",
            "routing_key": "${PD_ROUTING_KEY}",
            "url": hook.url,
        }
        send(config, record())
        send(config, record("resolved"))
        trigger, resolve = hook.wait_for(2)
        assert trigger.path == resolve.path == "/v2/enqueue"
        t = trigger.json
        assert t["routing_key"] == "e93facc04764012d7bfb002500d5d1a6"
        assert t["event_action"] == "trigger"
        assert t["dedup_key"] == "0123456789abcdef"
        assert t["client"] == "mlpulse"
        assert t["client_url"] == "http://127.0.0.1:8765/models/churn"
        p = t["payload"]
        assert p["summary"] == "churn accuracy 0.71 < 0.8"
        assert p["source"] == "churn"
        assert p["severity"] == "critical"  # severity: page
        assert p["timestamp"] == "2026-01-01T06:10:00Z"
        assert p["component"] == "churn" and p["class"] == "accuracy"
        details = p["custom_details"]
        assert details["value"] == "0.71" and details["threshold"] == "0.8"
        assert details["labels"]["version"] == "v1" and details["incident"] == 3
        r = resolve.json
        assert r == {
            "routing_key": "e93facc04764012d7bfb002500d5d1a6",
            "event_action": "resolve",
            "dedup_key": "0123456789abcdef",
        }

    @pytest.mark.parametrize(
        "severity,expected",
        [("page", "critical"), ("critical", "critical"), ("error", "error"), ("info", "info"),
         ("ticket", "warning"), (None, "warning")],
    )  # fmt: skip
    def test_severity(self, record: Any, severity: str | None, expected: str) -> None:
        note = record()
        note["alerts"][0]["labels"].pop("severity")
        if severity:
            note["alerts"][0]["labels"]["severity"] = severity
        (event,) = pagerduty_payload({"routing_key": "k"}, note)
        assert event["payload"]["severity"] == expected

    def test_full_enqueue_url_is_kept(self, receiver: Any, record: Any) -> None:
        hook = receiver()
        send(
            {"name": "p", "type": "pagerduty", "routing_key": "k", "url": f"{hook.url}/v2/enqueue"},
            record(),
        )
        assert hook.wait_for(1)[0].path == "/v2/enqueue"


class TestEmail:
    """Mail over SMTP to a real server (aiosmtpd): plain, STARTTLS with a login, and TLS."""

    def test_plain(self, record: Any) -> None:
        sink = smtp_sink()
        try:
            config = {
                "name": "mail", "type": "email", "host": "127.0.0.1", "port": sink.port,
                "from": "alerts@example.com", "to": ["oncall@example.com", "ml@example.com"],
            }  # fmt: skip
            send(config, record())
            send(config, record("resolved"))
        finally:
            sink.controller.stop()
        firing, resolved = sink.mails
        assert firing.sender == "alerts@example.com"
        assert firing.recipients == ["oncall@example.com", "ml@example.com"]
        assert firing.message["Subject"] == "[FIRING] churn-accuracy-low (churn)"
        assert firing.message["To"] == "oncall@example.com, ml@example.com"
        assert not firing.tls
        body = firing.message.get_payload(decode=True).decode()
        assert "churn accuracy 0.71 < 0.8" in body
        assert "Value:     0.71" in body and "Threshold: 0.8" in body
        assert "Incident #3: churn: churn-accuracy-low" in body
        assert "http://127.0.0.1:8765/models/churn" in body
        assert resolved.message["Subject"] == "[RESOLVED] churn-accuracy-low (churn)"
        assert (
            "Resolved:  2026-01-01T08:00:00Z" in resolved.message.get_payload(decode=True).decode()
        )

    def test_subject_cannot_inject_headers(self, record: Any) -> None:
        note = record(labels={"alertname": "x\r\nBcc: evil@example.com"})
        message = email_message({"to": ["a@b"]}, note)
        assert message["Bcc"] is None
        assert message["Subject"] == "[FIRING] x Bcc: evil@example.com (churn)"

    def test_starttls_and_login(
        self, record: Any, env: Any, certificate: Any, server_tls: Any, caplog: Any
    ) -> None:
        env(SMTP_PASSWORD="sm7p-pa55word")
        caplog.set_level(logging.DEBUG)
        sink = smtp_sink(tls_context=server_tls, logins={"alerts": "sm7p-pa55word"})
        config = {
            "name": "mail", "type": "email", "host": "127.0.0.1", "port": sink.port,
            "to": ["oncall@example.com"], "starttls": True, "ca_file": str(certificate[0]),
            "username": "alerts", "password": "${SMTP_PASSWORD}",
        }  # fmt: skip
        try:
            send(config, record())
            with pytest.raises(NotifierError) as info:
                send({**config, "username": "other"}, record())
            with pytest.raises(NotifierError, match="CERTIFICATE_VERIFY_FAILED"):
                send({k: v for k, v in config.items() if k != "ca_file"}, record())
        finally:
            sink.controller.stop()
        (mail,) = sink.mails
        assert mail.tls and mail.login == "alerts"
        assert mail.message["Subject"] == "[FIRING] churn-accuracy-low (churn)"
        assert "SMTP 535" in str(info.value) and not info.value.retryable
        assert "sm7p-pa55word" not in str(info.value) and "sm7p-pa55word" not in caplog.text

    def test_implicit_tls(self, record: Any, certificate: Any, server_tls: Any) -> None:
        from aiosmtpd.controller import Controller
        from receivers import SmtpSink, _Recorder, free_port

        sink = SmtpSink(free_port())
        sink.controller = Controller(
            _Recorder(sink), hostname="127.0.0.1", port=sink.port, ssl_context=server_tls
        )
        sink.controller.start()
        try:
            send(
                {"name": "mail", "type": "email", "host": "127.0.0.1", "port": sink.port,
                 "to": ["a@example.com"], "ssl": True, "ca_file": str(certificate[0])},
                record(),
            )  # fmt: skip
        finally:
            sink.controller.stop()
        assert [m.recipients for m in sink.mails] == [["a@example.com"]]

    def test_unreachable_server(self, record: Any) -> None:
        port = closed_port()
        config = {"name": "mail", "type": "email", "host": "127.0.0.1", "port": port, "to": ["a@b"]}
        with pytest.raises(
            NotifierError, match=f"notifier 'mail' \\(email, smtp 127.0.0.1:{port}\\)"
        ) as info:
            send(config, record())
        assert info.value.retryable


class TestEnvironmentUrls:
    """A URL, or part of one, may come from the environment; it is never shown."""

    def test_whole_url_from_the_environment(self, record: Any, env: Any) -> None:
        port = closed_port()
        env(SLACK_URL=f"http://127.0.0.1:{port}/services/T0/B0/S3CRETPATH")
        with pytest.raises(NotifierError) as info:
            send({"name": "chat", "type": "slack", "url": "${SLACK_URL}"}, record())
        assert "S3CRETPATH" not in str(info.value) and "notifier 'chat'" in str(info.value)

    def test_host_from_the_environment(self, record: Any, env: Any) -> None:
        port = closed_port()
        env(HOOK_HOST=f"127.0.0.1:{port}")
        with pytest.raises(NotifierError) as info:
            send({"name": "ops", "type": "webhook", "url": "http://${HOOK_HOST}/x"}, record())
        assert str(port) not in str(info.value)

    def test_expanded_url_must_be_http(self, record: Any, env: Any) -> None:
        env(HOOK_URL="file:///etc/passwd")
        with pytest.raises(NotifierError, match="field 'url' is not an http") as info:
            send({"name": "ops", "type": "webhook", "url": "${HOOK_URL}"}, record())
        assert not info.value.retryable and "passwd" not in str(info.value)


class TestRedactConfig:
    """A notifier config shown to users hides literal secrets and keeps ${VAR} references."""

    def test_literal_secrets_hidden(self) -> None:
        shown = redact_config(
            {
                "name": "chat",
                "type": "slack",
                "url": "https://user:pw@hooks.example.com/services/T0/B0/XYZ?x=1",
                "headers": {"Authorization": "Bearer abc", "X-Ref": "${TOKEN}"},
            }
        )
        assert shown["url"] == "https://<redacted>@hooks.example.com/<redacted>?<redacted>"
        assert shown["headers"] == {"Authorization": "<redacted>", "X-Ref": "${TOKEN}"}
        mail = redact_config({"type": "email", "username": "u", "password": "pw"})
        assert mail == {"type": "email", "username": "u", "password": "<redacted>"}
        assert (
            redact_config({"type": "pagerduty", "routing_key": "${PD}"})["routing_key"] == "${PD}"
        )
