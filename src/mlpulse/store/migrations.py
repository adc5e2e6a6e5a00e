"""Numbered schema migrations of the embedded store.

Each migration is a list of SQL statements applied once, in order, inside a transaction;
``schema_migrations`` records which ran. Never edit a released migration: add a new one.
Per-model tables (``raw_<id>``, ``feedback_<id>``, ``reference_<id>``) are created by the
store when a model is registered, since their columns depend on the model.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "registry, profiles, quarantine",
        [
            """CREATE TABLE models (
                model_id INTEGER PRIMARY KEY,
                name VARCHAR NOT NULL UNIQUE,
                task VARCHAR NOT NULL,
                prediction VARCHAR NOT NULL,
                label VARCHAR NOT NULL,
                threshold DOUBLE NOT NULL,
                classes VARCHAR,          -- JSON list or NULL
                segments VARCHAR NOT NULL, -- JSON list
                features VARCHAR NOT NULL, -- JSON object: column -> kind
                created_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE versions (
                model_id INTEGER NOT NULL,
                version VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                environment VARCHAR,      -- JSON: python and package versions
                PRIMARY KEY (model_id, version)
            )""",
            """CREATE TABLE segment_values (
                model_id INTEGER NOT NULL,
                col VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                PRIMARY KEY (model_id, col, value)
            )""",
            """CREATE TABLE profiles (
                model_id INTEGER NOT NULL,
                version VARCHAR NOT NULL,
                segment VARCHAR NOT NULL,    -- '' for all rows, else 'column=value'
                resolution VARCHAR NOT NULL, -- minute | hour | day | reference
                bucket BIGINT NOT NULL,      -- bucket start, microseconds since the epoch
                part VARCHAR NOT NULL,       -- core | features | labeled
                n BIGINT NOT NULL,
                key VARCHAR NOT NULL         -- the blob's key in profile_blobs
            )""",
            # Blobs live apart, under a primary key: a query fetches its few blobs through
            # the index instead of scanning every blob stored beside the ones it needs.
            """CREATE TABLE profile_blobs (
                key VARCHAR PRIMARY KEY,
                blob BLOB NOT NULL
            )""",
            """CREATE TABLE quarantine (
                model_id INTEGER NOT NULL,
                version VARCHAR,
                kind VARCHAR NOT NULL,       -- prediction | feedback
                received_at TIMESTAMP NOT NULL,
                batch_row BIGINT NOT NULL,   -- row number in the batch as sent
                id VARCHAR,
                reason VARCHAR NOT NULL,
                payload VARCHAR NOT NULL     -- the row as JSON, so nothing is lost
            )""",
            """CREATE TABLE ingest_stats (
                model_id INTEGER NOT NULL,
                kind VARCHAR NOT NULL,
                received BIGINT NOT NULL,
                stored BIGINT NOT NULL,
                quarantined BIGINT NOT NULL,
                recorded_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        2,
        "ingested batch ids (exactly-once effect over retried deliveries)",
        [
            """CREATE TABLE ingested_batches (
                model_id INTEGER NOT NULL,
                batch_id VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,       -- prediction | feedback
                received BIGINT NOT NULL,
                stored BIGINT NOT NULL,
                quarantined BIGINT NOT NULL,
                recorded_at TIMESTAMP NOT NULL,
                PRIMARY KEY (model_id, batch_id)
            )""",
        ],
    ),
    (
        3,
        "API keys of the HTTP server (hashed)",
        [
            """CREATE TABLE api_keys (
                key_id VARCHAR PRIMARY KEY,  -- public part of the key, shown by `keys list`
                hash VARCHAR NOT NULL,       -- sha256 of the whole key, hex
                scope VARCHAR NOT NULL,      -- ingest | read | admin
                name VARCHAR,
                created_at TIMESTAMP NOT NULL,
                revoked_at TIMESTAMP
            )""",
        ],
    ),
    (
        4,
        "data-quality constraints, version training info, resource usage (monitors)",
        [
            """CREATE TABLE IF NOT EXISTS quality_constraints (
                model_id INTEGER NOT NULL,
                col VARCHAR NOT NULL,
                rule VARCHAR NOT NULL,
                params VARCHAR NOT NULL,     -- JSON object
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (model_id, col, rule)
            )""",
            """CREATE TABLE IF NOT EXISTS version_training (
                model_id INTEGER NOT NULL,
                version VARCHAR NOT NULL,
                trained_at TIMESTAMP,
                max_age_us BIGINT,
                PRIMARY KEY (model_id, version)
            )""",
            """CREATE TABLE IF NOT EXISTS resource_usage (
                model_id INTEGER NOT NULL,
                version VARCHAR NOT NULL,
                ts TIMESTAMP NOT NULL,
                memory_mb DOUBLE NOT NULL
            )""",
        ],
    ),
    (
        5,
        "request hash of ingested batches (a batch id reused for another batch is refused)",
        [
            # sha256 of what the batch was (kind, version, columns named, body); NULL for
            # batches remembered before this migration, which keep the old behaviour
            "ALTER TABLE ingested_batches ADD COLUMN IF NOT EXISTS request_hash VARCHAR",
        ],
    ),
]
