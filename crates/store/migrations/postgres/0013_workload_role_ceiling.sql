-- A run's credential started by a launcher that is not an admin acts with at most the
-- roles its user held when the run started (their bits, as `RoleSet::bits` numbers
-- them); NULL: as its user does now. A launcher keeps a copy of the run's credential, and
-- must not gain what the user is granted during the run. The access tokens exchanged
-- from the credential find it by their `cid`, and act within the same roles.
ALTER TABLE credentials ADD COLUMN role_ceiling BIGINT;
