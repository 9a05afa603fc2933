DROP TABLE casebook_case_index;
