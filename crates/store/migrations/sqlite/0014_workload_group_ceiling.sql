-- A run's credential with a role ceiling (0013) also acts through at most the groups its
-- user was a member of when the run started: their ids, space-separated ('' for none).
-- NULL: through the user's groups as they are now (runs started before this migration).
-- Groups carry privileges on infrastructures and API services and name the user in
-- tokens and identity headers; a launcher's copy of the credential must not gain a group
-- its user joins during the run.
ALTER TABLE credentials ADD COLUMN group_ceiling TEXT;
