//! Who may do what with a project: the three collaborator roles, the actions a protected
//! upstream asks about, and the rule that a project always keeps an owner.
//!
//! A project the caller neither collaborates on nor administers is invisible to them:
//! the server answers 404 for it, never 403, so ids reveal nothing.

/// A collaborator's role on one project. The order is the order of power: an owner may
/// do everything a contributor may, a contributor everything a viewer may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProjectRole {
    Viewer,
    Contributor,
    Owner,
}

impl ProjectRole {
    pub const ALL: [ProjectRole; 3] = [ProjectRole::Viewer, ProjectRole::Contributor, ProjectRole::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Viewer => "viewer",
            ProjectRole::Contributor => "contributor",
            ProjectRole::Owner => "owner",
        }
    }

    pub fn parse(name: &str) -> Option<ProjectRole> {
        ProjectRole::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

/// What a caller wants to do with a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProjectAction {
    /// See the project and its collaborators.
    Read,
    /// Change the project's contents (what an upstream service guards).
    Write,
    /// Delete the project or change who collaborates on it.
    Admin,
}

impl ProjectAction {
    pub const ALL: [ProjectAction; 3] = [ProjectAction::Read, ProjectAction::Write, ProjectAction::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectAction::Read => "read",
            ProjectAction::Write => "write",
            ProjectAction::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<ProjectAction> {
        ProjectAction::ALL.into_iter().find(|action| action.as_str() == name)
    }

    /// The least role that may take this action.
    pub fn required_role(self) -> ProjectRole {
        match self {
            ProjectAction::Read => ProjectRole::Viewer,
            ProjectAction::Write => ProjectRole::Contributor,
            ProjectAction::Admin => ProjectRole::Owner,
        }
    }
}

/// A caller's standing on one project: their collaborator role, if any, and whether they
/// administer the realm (realm admins may do everything with every project of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectAccess {
    pub role: Option<ProjectRole>,
    pub realm_admin: bool,
}

impl ProjectAccess {
    /// Whether the project exists as far as the caller is told. When false, every route
    /// answers as for an unknown id.
    pub fn can_see(self) -> bool {
        self.realm_admin || self.role.is_some()
    }

    pub fn allows(self, action: ProjectAction) -> bool {
        self.realm_admin || self.role.is_some_and(|role| role >= action.required_role())
    }
}

/// Whether changing one collaborator's role from `current` to `new` (`None`: not a
/// collaborator) would take the project's last owner away, given how many owners it has.
/// A project that has lost its owners otherwise (the owner's user was deleted) is not
/// blocked: any change to it is allowed, and a realm admin can name a new owner.
pub fn removes_last_owner(owners_now: u64, current: Option<ProjectRole>, new: Option<ProjectRole>) -> bool {
    current == Some(ProjectRole::Owner) && new != Some(ProjectRole::Owner) && owners_now <= 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProjectAction::{Admin, Read, Write};
    use ProjectRole::{Contributor, Owner, Viewer};

    fn access(role: Option<ProjectRole>, realm_admin: bool) -> ProjectAccess {
        ProjectAccess { role, realm_admin }
    }

    /// One row per standing: whether it sees the project and may read, write, administer.
    fn check(role: Option<ProjectRole>, realm_admin: bool, expected: [bool; 4]) {
        let access = access(role, realm_admin);
        let got = [access.can_see(), access.allows(Read), access.allows(Write), access.allows(Admin)];
        assert_eq!(got, expected, "{role:?}, realm admin: {realm_admin}");
    }

    #[test]
    fn each_role_may_do_what_its_rank_allows_and_no_more() {
        check(None, false, [false, false, false, false]);
        check(Some(Viewer), false, [true, true, false, false]);
        check(Some(Contributor), false, [true, true, true, false]);
        check(Some(Owner), false, [true, true, true, true]);
    }

    #[test]
    fn realm_admins_see_and_may_do_everything_whether_or_not_they_collaborate() {
        check(None, true, [true, true, true, true]);
        check(Some(Viewer), true, [true, true, true, true]);
    }

    #[test]
    fn roles_rank_viewer_contributor_owner() {
        assert!(Viewer < Contributor && Contributor < Owner);
        assert_eq!(Read.required_role(), Viewer);
        assert_eq!(Write.required_role(), Contributor);
        assert_eq!(Admin.required_role(), Owner);
    }

    #[test]
    fn role_and_action_names_round_trip_and_unknown_names_are_refused() {
        for role in ProjectRole::ALL {
            assert_eq!(ProjectRole::parse(role.as_str()), Some(role));
        }
        for action in ProjectAction::ALL {
            assert_eq!(ProjectAction::parse(action.as_str()), Some(action));
        }
        for bad in ["", "Owner", "admin", "editor", " viewer"] {
            assert_eq!(ProjectRole::parse(bad), None, "{bad:?}");
        }
        for bad in ["", "Read", "delete", "owner"] {
            assert_eq!(ProjectAction::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_last_owner_cannot_be_demoted_or_removed() {
        assert!(removes_last_owner(1, Some(Owner), Some(Contributor)));
        assert!(removes_last_owner(1, Some(Owner), Some(Viewer)));
        assert!(removes_last_owner(1, Some(Owner), None));
        // A second owner makes either one removable.
        assert!(!removes_last_owner(2, Some(Owner), None));
        assert!(!removes_last_owner(2, Some(Owner), Some(Viewer)));
        // Keeping or adding owners, and changing others, never takes the last one away.
        assert!(!removes_last_owner(1, Some(Owner), Some(Owner)));
        assert!(!removes_last_owner(1, Some(Viewer), None));
        assert!(!removes_last_owner(1, None, Some(Contributor)));
        assert!(!removes_last_owner(0, None, Some(Owner)));
    }

    #[test]
    fn a_project_that_already_lost_its_owners_can_still_be_changed() {
        assert!(!removes_last_owner(0, None, Some(Viewer)));
        assert!(!removes_last_owner(0, Some(Viewer), None));
        assert!(!removes_last_owner(0, Some(Contributor), Some(Viewer)));
    }
}
