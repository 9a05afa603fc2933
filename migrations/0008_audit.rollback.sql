DROP TABLE casebook_audit_access;
DROP TABLE casebook_audit_heads;
DROP TABLE casebook_audit_entries;
