DROP TABLE casebook_relay_positions;
