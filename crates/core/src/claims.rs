//! Claim mappers: extra claims a realm or client adds to its access tokens, from a
//! static value, a user attribute, or the user's group memberships.

use std::collections::BTreeMap;

/// Claims keyward sets itself; no mapper may replace them.
pub const RESERVED_CLAIMS: [&str; 19] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "azp",
    "client_id",
    "sid",
    "cid",
    "scope",
    "typ",
    "name",
    "preferred_username",
    "email",
    "groups",
    "api_token_id",
    "api_token_gen",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimMapper {
    /// The same value in every token.
    Static { claim: String, value: String },
    /// The user's attribute of that name, when the user has it.
    Attribute { claim: String, attribute: String },
    /// The names of the user's groups, as a list.
    Groups { claim: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimValue {
    Text(String),
    List(Vec<String>),
}

impl ClaimMapper {
    pub fn claim(&self) -> &str {
        match self {
            ClaimMapper::Static { claim, .. }
            | ClaimMapper::Attribute { claim, .. }
            | ClaimMapper::Groups { claim } => claim,
        }
    }
}

/// Checks a mapper's claim name: 1–64 characters of `A-Z a-z 0-9 _ - . :`, not a claim
/// keyward sets itself.
pub fn check_claim_name(claim: &str) -> Result<(), String> {
    let well_formed = (1..=64).contains(&claim.len())
        && claim.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b':'));
    if !well_formed {
        return Err(format!("claim {claim:?} must be 1–64 characters of letters, digits, _ - . :"));
    }
    if is_reserved(claim) {
        return Err(format!("claim {claim:?} is set by keyward itself and cannot be mapped"));
    }
    Ok(())
}

/// Checks a list of mappers: each claim well-formed and mapped once, at most 50.
pub fn check_mappers(mappers: &[ClaimMapper]) -> Result<(), String> {
    if mappers.len() > 50 {
        return Err("at most 50 claim mappers".to_string());
    }
    for (position, mapper) in mappers.iter().enumerate() {
        check_claim_name(mapper.claim())?;
        if mappers[..position].iter().any(|earlier| earlier.claim() == mapper.claim()) {
            return Err(format!("claim {:?} is mapped twice", mapper.claim()));
        }
        if let ClaimMapper::Static { value, .. } = mapper
            && (value.chars().count() > 1024 || value.chars().any(char::is_control))
        {
            return Err(format!(
                "the value of claim {:?} must be at most 1024 characters, no control characters",
                mapper.claim()
            ));
        }
    }
    Ok(())
}

/// The claims `mappers` add for a user with these attributes and groups. Later mappers
/// (the client's, after the realm's) win for the same claim.
pub fn apply(
    mappers: &[&ClaimMapper],
    attributes: &BTreeMap<String, String>,
    groups: &[String],
) -> BTreeMap<String, ClaimValue> {
    let mut claims = BTreeMap::new();
    for mapper in mappers {
        // Mappers are checked when written, but one stored before a claim became
        // reserved must still never set it.
        if is_reserved(mapper.claim()) {
            continue;
        }
        let value = match mapper {
            ClaimMapper::Static { value, .. } => Some(ClaimValue::Text(value.clone())),
            ClaimMapper::Attribute { attribute, .. } => attributes.get(attribute).cloned().map(ClaimValue::Text),
            ClaimMapper::Groups { .. } => Some(ClaimValue::List(groups.to_vec())),
        };
        if let Some(value) = value {
            claims.insert(mapper.claim().to_string(), value);
        }
    }
    claims
}

/// Whether keyward sets `claim` itself (compared in any case).
pub fn is_reserved(claim: &str) -> bool {
    RESERVED_CLAIMS.iter().any(|reserved| reserved.eq_ignore_ascii_case(claim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_mappers_of_reserved_claims_set_nothing() {
        let old = ClaimMapper::Static { claim: "api_token_id".to_string(), value: "forged".to_string() };
        let fine = ClaimMapper::Static { claim: "tenant".to_string(), value: "acme".to_string() };
        let claims = apply(&[&old, &fine], &BTreeMap::new(), &[]);
        assert_eq!(claims.keys().collect::<Vec<_>>(), ["tenant"]);
    }

    #[test]
    fn mappers_add_static_attribute_and_group_claims() {
        let realm = ClaimMapper::Static { claim: "tenant".to_string(), value: "acme".to_string() };
        let organization = ClaimMapper::Attribute { claim: "org".to_string(), attribute: "organization".to_string() };
        let missing = ClaimMapper::Attribute { claim: "team".to_string(), attribute: "team".to_string() };
        let groups = ClaimMapper::Groups { claim: "teams".to_string() };
        let client = ClaimMapper::Static { claim: "tenant".to_string(), value: "acme-eu".to_string() };
        let attributes = BTreeMap::from([("organization".to_string(), "Acme Corp".to_string())]);
        let claims = apply(&[&realm, &organization, &missing, &groups, &client], &attributes, &["ml".to_string()]);
        assert_eq!(claims.get("tenant"), Some(&ClaimValue::Text("acme-eu".to_string())), "the client's wins");
        assert_eq!(claims.get("org"), Some(&ClaimValue::Text("Acme Corp".to_string())));
        assert_eq!(claims.get("team"), None, "an absent attribute adds nothing");
        assert_eq!(claims.get("teams"), Some(&ClaimValue::List(vec!["ml".to_string()])));
    }

    #[test]
    fn reserved_and_malformed_claims_are_refused() {
        for bad in ["sub", "ISS", "aud", "cid", "groups", "", "a b", "x/y"] {
            assert!(check_claim_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_claim_name("https:org").is_ok());
        let twice = [ClaimMapper::Groups { claim: "t".to_string() }, ClaimMapper::Groups { claim: "t".to_string() }];
        assert!(check_mappers(&twice).is_err());
    }
}
