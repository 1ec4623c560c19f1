//! Who may do what with API services, infrastructures and the deployments that join them
//! (DESIGN §6).
//!
//! Permissions live on two resources only. Groups hold a privilege on a service (Read,
//! Write, Deploy, Admin; the creator is its Owner) and on an infrastructure (View, Deploy,
//! Admin). Each privilege includes the ones before it. A deployment has no permissions of
//! its own: reading one needs Read on its service and View on its infrastructure; every
//! change needs Deploy on both. Realm administrators hold everything everywhere.
//!
//! What the caller may not read does not exist for them: the server answers 404, never
//! 403, so ids and names reveal nothing. A caller who may read but not act gets 403.

/// A caller's privilege on an API service. The order is the order of power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServicePrivilege {
    /// View the service, its versions, its deployments (where the infrastructure is also
    /// viewable) and its API keys.
    Read,
    /// Upload and delete versions.
    Write,
    /// Deploy it (with Deploy on the infrastructure) and manage its API keys.
    Deploy,
    /// Settings (auth, description), permissions, delete.
    Admin,
    /// The creator: everything Admin may do. Not grantable to groups.
    Owner,
}

impl ServicePrivilege {
    /// The privileges a group can be granted (Owner is only ever the creator).
    pub const GRANTABLE: [ServicePrivilege; 4] =
        [ServicePrivilege::Read, ServicePrivilege::Write, ServicePrivilege::Deploy, ServicePrivilege::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            ServicePrivilege::Read => "read",
            ServicePrivilege::Write => "write",
            ServicePrivilege::Deploy => "deploy",
            ServicePrivilege::Admin => "admin",
            ServicePrivilege::Owner => "owner",
        }
    }

    /// Parses a grantable privilege; `owner` is not one.
    pub fn parse_grantable(name: &str) -> Option<ServicePrivilege> {
        ServicePrivilege::GRANTABLE.into_iter().find(|privilege| privilege.as_str() == name)
    }
}

/// A caller's privilege on an infrastructure. The order is the order of power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InfraPrivilege {
    View,
    Deploy,
    /// Settings and permissions of the infrastructure, and deleting it.
    Admin,
}

impl InfraPrivilege {
    pub const ALL: [InfraPrivilege; 3] = [InfraPrivilege::View, InfraPrivilege::Deploy, InfraPrivilege::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            InfraPrivilege::View => "view",
            InfraPrivilege::Deploy => "deploy",
            InfraPrivilege::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<InfraPrivilege> {
        InfraPrivilege::ALL.into_iter().find(|privilege| privilege.as_str() == name)
    }
}

/// The highest of a caller's privileges (own grants through groups, ownership), if any.
pub fn highest<P: Ord + Copy>(privileges: impl IntoIterator<Item = P>) -> Option<P> {
    privileges.into_iter().max()
}

/// A caller's standing on one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceAccess {
    pub privilege: Option<ServicePrivilege>,
    pub realm_admin: bool,
}

impl ServiceAccess {
    /// The privilege that counts: realm administrators hold Owner's.
    pub fn effective(self) -> Option<ServicePrivilege> {
        if self.realm_admin { Some(ServicePrivilege::Owner) } else { self.privilege }
    }

    /// Whether the service exists as far as the caller is told.
    pub fn can_see(self) -> bool {
        self.has(ServicePrivilege::Read)
    }

    pub fn has(self, needed: ServicePrivilege) -> bool {
        self.effective().is_some_and(|held| held >= needed)
    }
}

/// A caller's standing on one infrastructure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfraAccess {
    pub privilege: Option<InfraPrivilege>,
    pub realm_admin: bool,
}

impl InfraAccess {
    pub fn effective(self) -> Option<InfraPrivilege> {
        if self.realm_admin { Some(InfraPrivilege::Admin) } else { self.privilege }
    }

    pub fn can_see(self) -> bool {
        self.has(InfraPrivilege::View)
    }

    pub fn has(self, needed: InfraPrivilege) -> bool {
        self.effective().is_some_and(|held| held >= needed)
    }
}

/// What a caller wants to do with a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeploymentAction {
    Read,
    Create,
    Update,
    Enable,
    Disable,
    Delete,
}

impl DeploymentAction {
    pub const ALL: [DeploymentAction; 6] = [
        DeploymentAction::Read,
        DeploymentAction::Create,
        DeploymentAction::Update,
        DeploymentAction::Enable,
        DeploymentAction::Disable,
        DeploymentAction::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentAction::Read => "read",
            DeploymentAction::Create => "create",
            DeploymentAction::Update => "update",
            DeploymentAction::Enable => "enable",
            DeploymentAction::Disable => "disable",
            DeploymentAction::Delete => "delete",
        }
    }
}

/// The answer about a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The caller may read the deployment but not do this (403).
    Forbidden,
    /// The caller may not read the deployment: it does not exist for them (404).
    Invisible,
}

/// Decides `action` on a deployment of a service on an infrastructure. Creating one is
/// decided the same way, on the service and infrastructure it would join.
pub fn decide_deployment(service: ServiceAccess, infra: InfraAccess, action: DeploymentAction) -> Decision {
    if !(service.can_see() && infra.can_see()) {
        return Decision::Invisible;
    }
    match action {
        DeploymentAction::Read => Decision::Allowed,
        _ if service.has(ServicePrivilege::Deploy) && infra.has(InfraPrivilege::Deploy) => Decision::Allowed,
        _ => Decision::Forbidden,
    }
}

/// An API service or infrastructure name, as it appears in gateway paths
/// (`/public/{infrastructure}/{service}/…`): 1–63 characters of `a-z 0-9 -`, starting with
/// a letter or digit and not ending with `-`, like a DNS label.
pub fn check_gateway_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let well_formed = (1..=63).contains(&bytes.len())
        && bytes.iter().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
        && bytes.first().is_some_and(|byte| *byte != b'-')
        && bytes.last().is_some_and(|byte| *byte != b'-');
    if well_formed {
        Ok(())
    } else {
        Err("must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-' (it is part of the \
             gateway URL)"
            .to_string())
    }
}

/// One entry of an infrastructure's list of allowed upstreams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamRule {
    /// Exactly this host name (lowercase).
    Host(String),
    /// A domain's subdomains, from `*.models.internal`: stored as `.models.internal`.
    Subdomains(String),
    /// Literal addresses in this range (`10.0.0.0/8`, `fd00::/8`, or one address).
    Range(ipnet::IpNet),
}

/// The most entries an infrastructure's list may have.
pub const MAX_UPSTREAM_RULES: usize = 50;

/// Parses an allowed-upstream entry: a host name, `*.` and a domain, or an address or
/// CIDR range.
pub fn parse_upstream_rule(text: &str) -> Result<UpstreamRule, String> {
    let text = text.trim().to_ascii_lowercase();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(UpstreamRule::Range(net.trunc()));
    }
    if let Ok(address) = text.parse::<std::net::IpAddr>() {
        return Ok(UpstreamRule::Range(ipnet::IpNet::from(address)));
    }
    let (subdomains, name) = match text.strip_prefix("*.") {
        Some(domain) => (true, domain),
        None => (false, text.as_str()),
    };
    let is_name = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    match (is_name, subdomains) {
        (true, true) => Ok(UpstreamRule::Subdomains(format!(".{name}"))),
        (true, false) => Ok(UpstreamRule::Host(name.to_string())),
        (false, _) => Err(format!(
            "{text:?} is not a host name (models.internal), a domain's subdomains (*.models.internal) or an \
             address range (10.0.0.0/8)"
        )),
    }
}

/// Whether an upstream's host (as in its URL, brackets removed) is allowed. An empty
/// list allows every host: the infrastructure's admins have not restricted it.
pub fn upstream_allowed(rules: &[UpstreamRule], host: &str) -> bool {
    if rules.is_empty() {
        return true;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let address = host.parse::<std::net::IpAddr>().ok();
    rules.iter().any(|rule| match (rule, address) {
        (UpstreamRule::Range(range), Some(address)) => range.contains(&address),
        (UpstreamRule::Host(name), None) => *name == host,
        (UpstreamRule::Subdomains(suffix), None) => host.ends_with(suffix.as_str()),
        _ => false,
    })
}

/// Checks the part of a request path a gateway forwards below an upstream's base path.
/// A segment that is `.` or `..` once percent-decoded, or that decodes to a slash,
/// backslash or NUL, is refused: an upstream (or a proxy in front of it) that normalises
/// paths would otherwise let `/public/dev/orders/../billing` reach another service
/// without its credentials, or any path outside the base.
///
/// Servers differ in how they read a segment, so every reading counts: the part before a
/// `;` (path parameters, which Java servers drop: `..;`) as well as the whole, an encoded
/// `%` is refused outright (so nothing decodes twice into a dot), and a segment that does
/// not decode to UTF-8 (overlong forms such as `%c0%ae`) is refused too.
pub fn check_forwarded_path(path: &str) -> Result<(), String> {
    for segment in path.split('/') {
        let decoded = percent_decode(segment.as_bytes());
        let readable = std::str::from_utf8(&decoded).ok();
        let escapes = segment.to_ascii_lowercase().contains("%25")
            || readable.is_none_or(|decoded| {
                let before_parameters = decoded.split(';').next().unwrap_or_default();
                [decoded, before_parameters].iter().any(|reading| *reading == "." || *reading == "..")
                    || decoded.chars().any(|character| matches!(character, '/' | '\\' | '\0'))
            });
        if escapes {
            return Err("the path may not contain '.' or '..' segments (also before a ';'), an encoded '%', '/', \
                        '\\' or NUL, or bytes that are not UTF-8"
                .to_string());
        }
    }
    Ok(())
}

/// Decodes `%XX` escapes once; anything else (including a bad escape) is kept as is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |byte: u8| (byte as char).to_digit(16).map(|digit| digit as u8);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        let escaped = (bytes[position] == b'%')
            .then(|| Some((hex(*bytes.get(position + 1)?)?, hex(*bytes.get(position + 2)?)?)))
            .flatten();
        match escaped {
            Some((high, low)) => {
                decoded.push(high << 4 | low);
                position += 3;
            }
            None => {
                decoded.push(bytes[position]);
                position += 1;
            }
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentAction as A;
    use InfraPrivilege as I;
    use ServicePrivilege as S;

    /// The rules as a table over every service privilege (none, Read, Write, Deploy,
    /// Admin, Owner) and infrastructure privilege (none, View, Deploy, Admin), for every
    /// action: what the issue states, written out case by case rather than recomputed.
    #[test]
    fn deployment_permissions_over_every_combination() {
        let services = [None, Some(S::Read), Some(S::Write), Some(S::Deploy), Some(S::Admin), Some(S::Owner)];
        let infras = [None, Some(I::View), Some(I::Deploy), Some(I::Admin)];
        let mut checked = 0;
        for service in services {
            for infra in infras {
                for action in DeploymentAction::ALL {
                    let expected = expected(service, infra, action);
                    let got = decide_deployment(
                        ServiceAccess { privilege: service, realm_admin: false },
                        InfraAccess { privilege: infra, realm_admin: false },
                        action,
                    );
                    assert_eq!(got, expected, "service {service:?}, infrastructure {infra:?}, {}", action.as_str());
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 6 * 4 * 6);
    }

    fn expected(service: Option<S>, infra: Option<I>, action: A) -> Decision {
        let readable = matches!(service, Some(S::Read | S::Write | S::Deploy | S::Admin | S::Owner))
            && matches!(infra, Some(I::View | I::Deploy | I::Admin));
        let deployable =
            matches!(service, Some(S::Deploy | S::Admin | S::Owner)) && matches!(infra, Some(I::Deploy | I::Admin));
        match (readable, action, deployable) {
            (false, _, _) => Decision::Invisible,
            (true, A::Read, _) => Decision::Allowed,
            (true, _, true) => Decision::Allowed,
            (true, _, false) => Decision::Forbidden,
        }
    }

    #[test]
    fn realm_admins_hold_everything_everywhere() {
        for action in DeploymentAction::ALL {
            let decision = decide_deployment(
                ServiceAccess { privilege: None, realm_admin: true },
                InfraAccess { privilege: None, realm_admin: true },
                action,
            );
            assert_eq!(decision, Decision::Allowed);
        }
    }

    #[test]
    fn owner_is_not_grantable_and_privileges_parse_exactly() {
        assert_eq!(ServicePrivilege::parse_grantable("owner"), None);
        assert_eq!(ServicePrivilege::parse_grantable("deploy"), Some(S::Deploy));
        assert_eq!(ServicePrivilege::parse_grantable("Deploy"), None);
        assert_eq!(InfraPrivilege::parse("view"), Some(I::View));
        assert_eq!(InfraPrivilege::parse("read"), None);
        assert_eq!(highest([S::Read, S::Deploy, S::Write]), Some(S::Deploy));
    }

    #[test]
    fn forwarded_paths_cannot_climb_out_or_smuggle_separators() {
        for good in [
            "",
            "/",
            "/predict",
            "/v1/models/a.b/x",
            "/a/...",
            "/%41bc",
            "/a%20b",
            "/.well-known/x",
            "/%",
            "/a;b=1",
            "/%C3%A9",
        ] {
            assert_eq!(check_forwarded_path(good), Ok(()), "{good}");
        }
        for bad in [
            "/..",
            "/../billing",
            "/a/./b",
            "/%2e%2e/billing",
            "/%2E%2e",
            "/.%2e/x",
            "/%2e",
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/..;/admin",
            "/%2e%2e;x/admin",
            "/.;/x",
            "/%252e%252e/admin",
            "/%252e%252e%252fadmin",
            "/%c0%ae%c0%ae/admin",
            "/a%ffb",
        ] {
            assert!(check_forwarded_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upstreams_are_allowed_by_host_subdomain_or_range() {
        let rules: Vec<UpstreamRule> = ["models.internal", "*.ml.example.com", "10.0.0.0/8", "fd00::1"]
            .iter()
            .map(|text| parse_upstream_rule(text).unwrap())
            .collect();
        for allowed in
            ["models.internal", "MODELS.internal", "a.ml.example.com", "b.c.ml.example.com", "10.1.2.3", "[fd00::1]"]
        {
            assert!(upstream_allowed(&rules, allowed), "{allowed}");
        }
        for refused in
            ["ml.example.com", "evilml.example.com", "models.internal.evil", "11.0.0.1", "[fd00::2]", "localhost"]
        {
            assert!(!upstream_allowed(&rules, refused), "{refused}");
        }
        assert!(upstream_allowed(&[], "anything.example"), "an empty list restricts nothing");
        for bad in ["", "*.", "http://x", "a..b", "-a.b", "a_b.c", "10.0.0.0/33", "*"] {
            assert!(parse_upstream_rule(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_upstream_rule("10.1.2.3/8"), Ok(UpstreamRule::Range("10.0.0.0/8".parse().unwrap())));
    }

    #[test]
    fn gateway_names_are_url_safe_labels() {
        for good in ["dev", "prod-eu", "a", "model2", "x-1-y"] {
            assert_eq!(check_gateway_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-dev", "dev-", "Dev", "dev_eu", "a/b", "a.b", "..", &"a".repeat(64)] {
            assert!(check_gateway_name(bad).is_err(), "{bad}");
        }
    }
}
