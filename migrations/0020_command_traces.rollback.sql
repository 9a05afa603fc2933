ALTER TABLE casebook_command_origins DROP COLUMN traceparent, DROP COLUMN tracestate;
