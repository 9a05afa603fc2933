DROP INDEX IF EXISTS casebook_case_index_by_requester;
ALTER TABLE casebook_case_index DROP COLUMN IF EXISTS requester_id;
DROP FUNCTION IF EXISTS casebook_expect_live_keys(uuid[]);
DROP TABLE IF EXISTS casebook_data_keys;
DROP TABLE IF EXISTS casebook_erasures;
