DROP FUNCTION casebook_expect_versions(uuid[], bigint[]);
