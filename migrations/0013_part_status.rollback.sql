DROP TABLE casebook_part_status;
