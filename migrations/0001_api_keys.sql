-- API keys: bearer tokens for the HTTP API. Only a hash of each key's secret is stored.
CREATE TABLE casebook_api_keys (
    key_id uuid PRIMARY KEY,
    label text NOT NULL DEFAULT '',
    role text NOT NULL CHECK (role IN ('agent', 'supervisor', 'auditor', 'analyst', 'admin')),
    principal_id text NOT NULL,
    secret_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz NULL
);
