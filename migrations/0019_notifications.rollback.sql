DROP TABLE casebook_notifications;
