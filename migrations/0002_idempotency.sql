-- Answers to commands that carried an Idempotency-Key, written by the write side in the
-- same transaction as the command's events, so a retry gets the first answer back.
-- depends: 0001_api_keys
CREATE TABLE casebook_idempotency (
    principal_id text NOT NULL,
    idempotency_key text NOT NULL,
    fingerprint text NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal_id, idempotency_key)
);
