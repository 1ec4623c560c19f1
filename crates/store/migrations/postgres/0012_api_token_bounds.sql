-- An API token minted (or re-issued, or given to another user) by a token manager who is
-- not an admin acts only within the privileges its user held then: their roles and
-- groups, as JSON ({"roles": [...], "groups": [...]}). NULL when an admin minted it: it
-- acts as its user does now. A manager who kept a copy of a plain user's token must not
-- gain what the user is granted later.
ALTER TABLE credentials ADD COLUMN bound_privileges TEXT;
