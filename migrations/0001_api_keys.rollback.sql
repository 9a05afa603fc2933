DROP TABLE casebook_api_keys;
