"""Server settings, API keys and JSON logs, without a network."""

from __future__ import annotations

import json
import logging

import pytest

from mlpulse.errors import ConfigError
from mlpulse.server.config import ServerConfig
from mlpulse.server.keys import KeyStore
from mlpulse.server.logs import JsonFormatter
from mlpulse.server.run import check_bind
from mlpulse.store.database import Store


class TestServerConfig:
    """Flags beat environment variables, which beat the config file, which beats defaults."""

    def test_precedence(self, tmp_path):
        path = tmp_path / "mlpulse.toml"
        path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\nmax_rows = 10\n')
        env = {"MLPULSE_PORT": "9001", "MLPULSE_ALLOW_UNAUTHENTICATED": "yes"}
        config = ServerConfig.load(str(path), overrides={"port": 9002, "db": None}, environ=env)
        assert (config.port, config.host, config.max_rows) == (9002, "0.0.0.0", 10)
        assert config.allow_unauthenticated is True and config.db == "./mlpulse.duckdb"
        assert ServerConfig.load(str(path), environ=env).port == 9001
        assert ServerConfig.load(environ={"MLPULSE_CONFIG": str(path)}).port == 9000

    @pytest.mark.parametrize("values", [{"port": "x"}, {"nope": 1}, {"log_format": "xml"},
                                        {"ssl_certfile": "a.pem"}, {"max_rows": 0}])
    def test_invalid(self, values):
        with pytest.raises(ConfigError):
            ServerConfig.from_mapping(values)

    def test_loopback_and_bind_check(self):
        keys = KeyStore(Store(":memory:"))
        assert ServerConfig(host="127.0.0.1").loopback and ServerConfig(host="::1").loopback
        check_bind(ServerConfig(host="127.0.0.1"), keys)
        with pytest.raises(ConfigError, match="allow-unauthenticated"):
            check_bind(ServerConfig(host="0.0.0.0"), keys)
        check_bind(ServerConfig(host="0.0.0.0", allow_unauthenticated=True), keys)
        keys.create("admin")
        check_bind(ServerConfig(host="0.0.0.0"), keys)


class TestKeyStore:
    """Keys are stored hashed, checked by value, scoped, and revocable."""

    def test_lifecycle(self):
        store = Store(":memory:")
        keys = KeyStore(store)
        assert not keys.enabled
        key = keys.create("ingest", name="svc")
        assert keys.enabled and key.startswith("mlp_")
        stored = store.fetch_all("SELECT hash FROM api_keys")[0][0]
        assert key not in stored and len(stored) == 64  # only the SHA-256
        found = keys.check(key)
        assert found.allows("ingest") and not found.allows("read")
        assert keys.check(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        keys.revoke(found.key_id)
        assert not keys.check(key).allows("ingest")
        assert keys.enabled  # revoking the last key does not open the server
        with pytest.raises(ConfigError):
            keys.create("superuser")


class TestJsonLogs:
    """Log records are one JSON object per line with their extra fields."""

    def test_format(self):
        record = logging.makeLogRecord({"name": "mlpulse.access", "levelname": "INFO",
                                        "msg": "GET %s", "args": ("/x",), "status": 200})
        entry = json.loads(JsonFormatter().format(record))
        assert entry["message"] == "GET /x" and entry["status"] == 200
        assert entry["level"] == "info" and entry["ts"].endswith("+00:00")
