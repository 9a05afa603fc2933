-- Messages casebook sends to people (one-time caller verification codes, §2), kept by the
-- embedded notifier (CASEBOOK_NOTIFIER=table) for `casebook notifications list`. The
-- message is what goes out, so it holds the code: the one place a code is kept in clear.
-- depends: 0016_triage_clocks
CREATE TABLE casebook_notifications (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    organisation_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('email', 'phone')),
    recipient text NOT NULL,
    subject text NOT NULL,
    message text NOT NULL
);
