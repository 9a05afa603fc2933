-- Messages the write side decided to send (survey invitations, §6), written in the same
-- transaction as the event that decided it; the notifier part of `casebook run` hands
-- each to the configured notifier and marks it delivered, or counts the failed attempt
-- and sets when to try again. The message is what goes out: it holds personal data.
-- depends: 0023_satisfaction
CREATE TABLE casebook_notification_outbox (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    case_id uuid NOT NULL,
    event_version bigint NOT NULL,
    organisation_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('email', 'phone')),
    recipient text NOT NULL,
    subject text NOT NULL,
    message text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text NULL,
    delivered_at timestamptz NULL,
    UNIQUE (case_id, event_version)
);
-- What the notifier part looks for: undelivered rows by when they are due.
CREATE INDEX casebook_notification_outbox_due
    ON casebook_notification_outbox (next_attempt_at, id) WHERE delivered_at IS NULL;
