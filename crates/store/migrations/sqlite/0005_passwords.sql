-- People's passwords (argon2id, PHC strings). users.password_hash has been in the
-- schema since 0001, always NULL until now; NULL still means "no password", and a
-- service account never has one. This adds when it was last set (unix milliseconds).
ALTER TABLE users ADD COLUMN password_changed_at INTEGER;
