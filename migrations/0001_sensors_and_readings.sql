-- Sensors and their readings: the heart of the schema.
-- Timestamps are timestamptz (stored in UTC); a reading is keyed by (sensor_id, ts),
-- so a repeated reading is a no-op rather than a second row.

CREATE TABLE sensors (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9._-]{1,64}$'),
    kind             text        NOT NULL DEFAULT 'humidity' CHECK (kind IN ('humidity', 'temperature')),
    unit             text        NOT NULL,
    location         text,
    -- SHA-256 of the sensor's bearer token; the token itself is never stored.
    token_hash       bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at       timestamptz NOT NULL DEFAULT now(),
    token_rotated_at timestamptz
);

CREATE TABLE readings (
    sensor_id   bigint           NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    ts          timestamptz      NOT NULL,
    value       double precision NOT NULL CHECK (value = value AND value <> 'Infinity' AND value <> '-Infinity'),
    -- When the reading reached us: lets the registry tell late readings from on-time ones.
    received_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, ts)
);
