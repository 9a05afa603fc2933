-- Signed checkpoints of the audit log (projections/audit/checkpointer.py): each covers
-- the entries with entry_id in (after_entry_id, upto_entry_id] by their Merkle root and
-- chains to the checkpoint before it; and the outbox that publishes them.
-- depends: 0008_audit
CREATE TABLE casebook_audit_checkpoints (
    number bigint PRIMARY KEY,     -- 1, 2, ... with no gaps
    after_entry_id bigint NOT NULL,
    upto_entry_id bigint NOT NULL UNIQUE,
    count integer NOT NULL,
    merkle_root text NOT NULL,
    prev_digest text NOT NULL,
    digest text NOT NULL,
    created_at timestamptz NOT NULL,
    key_fingerprint text NOT NULL,
    public_key text NOT NULL,      -- PEM, so bundles carry the key even after a rotation
    signature text NOT NULL,       -- base64 Ed25519 over the canonical encoding
    CHECK (upto_entry_id > after_entry_id AND count > 0)
);

-- Written in the transaction that stores a checkpoint, published by one outbox publisher.
CREATE TABLE casebook_audit_checkpoint_outbox (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    type text NOT NULL,
    subject text NOT NULL,
    time timestamptz NOT NULL,
    payload jsonb NOT NULL,
    published_at timestamptz
);
CREATE INDEX casebook_audit_checkpoint_outbox_pending
    ON casebook_audit_checkpoint_outbox (id) WHERE published_at IS NULL;

CREATE TABLE casebook_audit_checkpoint_outbox_offsets (
    partition integer PRIMARY KEY,
    next_offset bigint NOT NULL
);
