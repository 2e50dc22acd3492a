-- Admin sessions of the web pages. Kept in the database (not in process memory) so a
-- login holds across replicas behind the balancer. The cookie carries a random token;
-- only its SHA-256 is stored, like sensor tokens.

CREATE TABLE admin_sessions (
    token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    -- Per-session CSRF token, put in every admin form and checked on every POST.
    csrf       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
