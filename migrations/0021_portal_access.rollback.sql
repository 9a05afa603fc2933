ALTER TABLE casebook_audit_access DROP COLUMN on_behalf_of;
-- Portal keys cannot outlive the role they were created with.
DELETE FROM casebook_api_keys WHERE role = 'portal';
ALTER TABLE casebook_api_keys DROP CONSTRAINT casebook_api_keys_role_check;
ALTER TABLE casebook_api_keys ADD CONSTRAINT casebook_api_keys_role_check
    CHECK (role IN ('agent', 'supervisor', 'auditor', 'analyst', 'admin'));
