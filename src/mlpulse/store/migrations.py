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
    (
        6,
        "alerting: rules, notifiers, alerts and their events, incidents, silences, outbox",
        [
            # times are microseconds since the epoch (UTC)
            """CREATE TABLE IF NOT EXISTS alert_rules (
                name VARCHAR PRIMARY KEY,
                body VARCHAR NOT NULL,       -- the rule as JSON (Rule.to_dict)
                source VARCHAR NOT NULL,     -- user | recommended
                updated_us BIGINT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS alert_notifiers (
                name VARCHAR PRIMARY KEY,
                config VARCHAR NOT NULL,     -- JSON as given; secrets stay ${ENV} references
                updated_us BIGINT NOT NULL
            )""",
            # one row per alert: a rule on a model from pending to resolved
            """CREATE TABLE IF NOT EXISTS alerts (
                alert_id BIGINT PRIMARY KEY,
                rule VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                version VARCHAR,
                state VARCHAR NOT NULL,      -- pending | firing | resolved
                active_since_us BIGINT NOT NULL,
                fired_us BIGINT,
                resolved_us BIGINT,
                last_active_us BIGINT,
                value DOUBLE,
                threshold DOUBLE,
                rows_seen BIGINT,
                labels VARCHAR NOT NULL,     -- JSON
                annotations VARCHAR NOT NULL, -- JSON
                fingerprint VARCHAR NOT NULL,
                incident BIGINT,
                notified VARCHAR,            -- status last sent: firing | resolved | NULL
                notified_us BIGINT,
                silenced_by VARCHAR,
                inhibited_by VARCHAR
            )""",
            # when each rule last judged each model (state lives in `alerts`)
            """CREATE TABLE IF NOT EXISTS alert_cursors (
                rule VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                last_eval_us BIGINT NOT NULL,
                PRIMARY KEY (rule, model)
            )""",
            """CREATE TABLE IF NOT EXISTS alert_events (
                alert_id BIGINT NOT NULL,
                at_us BIGINT NOT NULL,
                event VARCHAR NOT NULL,      -- pending | firing | resolved | cleared
                value DOUBLE,
                threshold DOUBLE
            )""",
            """CREATE TABLE IF NOT EXISTS incidents (
                id BIGINT PRIMARY KEY,
                title VARCHAR NOT NULL,
                status VARCHAR NOT NULL,     -- open | acknowledged | resolved
                opened_us BIGINT NOT NULL,
                acknowledged_us BIGINT,
                resolved_us BIGINT,
                last_activity_us BIGINT NOT NULL,
                models VARCHAR NOT NULL      -- JSON list
            )""",
            """CREATE TABLE IF NOT EXISTS incident_events (
                incident BIGINT NOT NULL,
                at_us BIGINT NOT NULL,
                kind VARCHAR NOT NULL,
                alert_id BIGINT,
                detail VARCHAR NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS silences (
                id VARCHAR PRIMARY KEY,
                matchers VARCHAR NOT NULL,   -- JSON object: label -> value
                starts_us BIGINT NOT NULL,
                ends_us BIGINT NOT NULL,
                comment VARCHAR NOT NULL,
                created_by VARCHAR,
                created_us BIGINT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS notification_outbox (
                id BIGINT PRIMARY KEY,
                notifier VARCHAR NOT NULL,
                dedup_key VARCHAR NOT NULL UNIQUE,
                payload VARCHAR NOT NULL,    -- JSON notification record
                created_us BIGINT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_us BIGINT,      -- NULL once sent or given up
                sent_us BIGINT,
                gave_up_us BIGINT,
                last_error VARCHAR
            )""",
        ],
    ),
    (
        7,
        "retention: the Parquet lake's manifest and how far each tier has been pruned",
        [
            # one row per Parquet file of archived raw rows (``<db>.lake/``): a file is
            # part of the lake exactly when its row is (written, renamed, then recorded in
            # the transaction that deletes its rows from the raw table)
            """CREATE TABLE IF NOT EXISTS lake_files (
                path VARCHAR PRIMARY KEY,    -- relative to the lake directory
                model_id INTEGER NOT NULL,
                version VARCHAR NOT NULL,
                first_minute BIGINT NOT NULL, -- minute buckets of its rows (microseconds)
                last_minute BIGINT NOT NULL,
                rows BIGINT NOT NULL,
                bytes BIGINT NOT NULL,
                columns VARCHAR NOT NULL,    -- JSON object: column -> DuckDB type
                written_us BIGINT NOT NULL
            )""",
            # per model and tier (raw, raw_deleted, minute, hour): everything of that tier
            # before ``before`` (microseconds) has been moved out or deleted
            """CREATE TABLE IF NOT EXISTS retention_marks (
                model_id INTEGER NOT NULL,
                tier VARCHAR NOT NULL,
                before BIGINT NOT NULL,
                PRIMARY KEY (model_id, tier)
            )""",
        ],
    ),
    (
        8,
        "retention: the lake also takes the feedback audit log (lake_files.kind)",
        [
            # what a lake file holds: 'raw' (raw rows, model=/version=/date=) or 'feedback'
            # (the feedback audit log, model=/feedback/date=); readers of one never see the
            # other. Files of migration 7 are raw.
            "ALTER TABLE lake_files ADD COLUMN IF NOT EXISTS kind VARCHAR DEFAULT 'raw'",
        ],
    ),
]
