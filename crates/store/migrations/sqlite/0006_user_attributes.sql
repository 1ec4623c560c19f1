-- Free-form user attributes for the token service's claim mappers (e.g. `organization`):
-- a JSON object of string to string, written whole by the store (never edited in SQL).
-- The input rules are `keyward_core::validate::attributes`; '{}' means none.
ALTER TABLE users ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
