DROP TABLE casebook_idempotency;
