-- The customer portal (api/portal.py): keys of role `portal`, which act for one customer
-- admin per request; its reads of case data name that admin in their access records
-- (`on_behalf_of`; NULL for every other read and for records written before).
-- depends: 0008_audit
ALTER TABLE casebook_api_keys DROP CONSTRAINT casebook_api_keys_role_check;
ALTER TABLE casebook_api_keys ADD CONSTRAINT casebook_api_keys_role_check
    CHECK (role IN ('agent', 'supervisor', 'auditor', 'analyst', 'admin', 'portal'));
ALTER TABLE casebook_audit_access ADD COLUMN on_behalf_of text;
