-- API tokens (admin-managed signed JWTs) live in the credentials table like every other
-- credential. These columns are theirs for now, and general enough for any credential:
-- an IP filter (a JSON array of canonical addresses and CIDR ranges; '[]' = anywhere),
-- an enabled switch, a generation (unlock makes a new JWT and ends the old ones), and
-- who last changed the row. Disabled rows stay out of the in-memory index.
ALTER TABLE credentials ADD COLUMN ip_filter TEXT NOT NULL DEFAULT '[]';
ALTER TABLE credentials ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE credentials ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE credentials ADD COLUMN updated_at INTEGER;
ALTER TABLE credentials ADD COLUMN updated_by TEXT;
