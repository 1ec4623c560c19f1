//! The four roles and a compact set of them. Roles are granted to users or groups; a
//! user's effective roles are the union of their own grants and their groups' grants.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    TokenManager,
    CreateApiService,
    WorkloadLauncher,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::TokenManager, Role::CreateApiService, Role::WorkloadLauncher];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::TokenManager => "token-manager",
            Role::CreateApiService => "create-api-service",
            Role::WorkloadLauncher => "workload-launcher",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    fn bit(self) -> u8 {
        match self {
            Role::Admin => 1,
            Role::TokenManager => 2,
            Role::CreateApiService => 4,
            Role::WorkloadLauncher => 8,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoleSet(u8);

impl RoleSet {
    pub const EMPTY: RoleSet = RoleSet(0);

    pub fn all() -> RoleSet {
        Role::ALL.into_iter().collect()
    }

    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    pub fn insert(&mut self, role: Role) {
        self.0 |= role.bit();
    }

    pub fn remove(&mut self, role: Role) {
        self.0 &= !role.bit();
    }

    /// The roles in `self` that are not in `other`.
    pub fn without(self, other: RoleSet) -> RoleSet {
        RoleSet(self.0 & !other.0)
    }

    /// The roles in both sets.
    pub fn intersection(self, other: RoleSet) -> RoleSet {
        RoleSet(self.0 & other.0)
    }

    /// The set as stored (`credentials.role_ceiling`): one bit per role, as `Role::bit`
    /// numbers them. Stored values depend on these numbers: never renumber a role.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The set of stored bits; `None` when a bit names no role.
    pub fn from_bits(bits: u8) -> Option<RoleSet> {
        (bits & !RoleSet::all().0 == 0).then_some(RoleSet(bits))
    }

    /// True when every role in `other` is also in `self`.
    pub fn is_superset_of(self, other: RoleSet) -> bool {
        other.0 & !self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |role| self.contains(*role))
    }

    pub fn names(self) -> Vec<String> {
        self.iter().map(|role| role.as_str().to_string()).collect()
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(roles: I) -> RoleSet {
        let mut set = RoleSet::EMPTY;
        for role in roles {
            set.insert(role);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Admin"), None);
    }

    #[test]
    fn superset_tells_whether_a_grant_would_escalate() {
        let manager: RoleSet = [Role::TokenManager].into_iter().collect();
        let admin: RoleSet = [Role::Admin].into_iter().collect();
        assert!(manager.is_superset_of(RoleSet::EMPTY));
        assert!(manager.is_superset_of(manager));
        assert!(!manager.is_superset_of(admin));
        assert!(RoleSet::all().is_superset_of(admin));
        // What a set holds beyond another: what a grant for it would add.
        let both: RoleSet = [Role::Admin, Role::TokenManager].into_iter().collect();
        assert_eq!(both.without(manager), admin);
        assert_eq!(manager.without(both), RoleSet::EMPTY);
        assert_eq!(both.without(RoleSet::EMPTY).names(), ["admin", "token-manager"]);
        assert_eq!(both.intersection(manager), manager);
        assert_eq!(admin.intersection(manager), RoleSet::EMPTY);
    }

    #[test]
    fn stored_bits_keep_their_meaning() {
        // Databases hold these numbers (`credentials.role_ceiling`).
        let bits: Vec<u8> = Role::ALL.into_iter().map(|role| RoleSet::from_iter([role]).bits()).collect();
        assert_eq!(bits, [1, 2, 4, 8]);
        for bits in 0..=15u8 {
            assert_eq!(RoleSet::from_bits(bits).map(RoleSet::bits), Some(bits));
        }
        assert_eq!(RoleSet::from_bits(16), None);
        assert_eq!(RoleSet::from_bits(0xff), None);
    }
}
