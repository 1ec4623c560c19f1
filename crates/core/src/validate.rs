//! Input rules, one function per field. Each returns a message that says what to fix;
//! the server puts it in a 422 problem naming the field.

use std::collections::BTreeMap;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
pub const MAX_ATTRIBUTES: usize = 50;
pub const MAX_ATTRIBUTE_NAME_CHARS: usize = 64;
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 1024;

/// Claims that keyward's tokens set themselves (JWT, OIDC, RFC 9068 and keyward's own
/// `cid`). A user attribute by one of these names could be mapped over the real claim,
/// so they are refused, in any case.
pub const RESERVED_ATTRIBUTE_NAMES: [&str; 13] =
    ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "azp", "client_id", "sid", "cid", "scope", "typ"];

/// Usernames: 3 to 64 characters of `a-z 0-9 . _ -`.
pub fn username(text: &str) -> Result<(), String> {
    let length_ok = (3..=64).contains(&text.len());
    let characters_ok =
        text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte));
    if length_ok && characters_ok {
        Ok(())
    } else {
        Err("must be 3 to 64 characters of a-z, 0-9, '.', '_' and '-'".to_string())
    }
}

/// A pragmatic address check: one `@`, a non-empty local part of at most 64 printable
/// characters without spaces, and a domain of dot-separated labels. Plus addressing is
/// allowed: `riley+ci@example.com` is its own address.
pub fn email(text: &str) -> Result<(), String> {
    let invalid = || Err("must be an email address such as riley@example.com".to_string());
    if text.len() > 254 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid();
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return invalid();
    };
    let local_ok = !local.is_empty() && local.len() <= 64 && !local.contains('@');
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        });
    if local_ok && labels_ok { Ok(()) } else { invalid() }
}

/// The form in which emails are compared for uniqueness: the whole address, lowercased.
/// Plus tags are kept, so `a+x@d` and `a+y@d` stay distinct.
pub fn email_key(text: &str) -> String {
    text.to_lowercase()
}

/// Realm names: 1 to 64 characters of `a-z 0-9 - _`, starting with a letter or digit.
/// They appear in URL paths and issuer URLs, so nothing there needs escaping.
pub fn realm_name(text: &str) -> Result<(), String> {
    let length_ok = (1..=64).contains(&text.len());
    let characters_ok =
        text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_');
    let start_ok = text.bytes().next().is_some_and(|byte| byte != b'-' && byte != b'_');
    if length_ok && characters_ok && start_ok {
        Ok(())
    } else {
        Err("must be 1 to 64 characters of a-z, 0-9, '-' and '_', not starting with '-' or '_'".to_string())
    }
}

/// Names of keys, tokens and groups: 1 to 100 characters, no control characters and
/// no slashes (names appear in URL paths).
pub fn object_name(text: &str) -> Result<(), String> {
    let count = text.chars().count();
    if count == 0 || count > MAX_NAME_CHARS {
        return Err(format!("must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if text.trim() != text {
        return Err("must not start or end with whitespace".to_string());
    }
    if text.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err("must not contain control characters or slashes".to_string());
    }
    if text == "." || text == ".." {
        return Err("must not be . or .. (names appear in URL paths)".to_string());
    }
    Ok(())
}

/// Free text such as descriptions and person names.
pub fn free_text(text: &str, max_chars: usize) -> Result<(), String> {
    if text.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("must not contain control characters".to_string());
    }
    Ok(())
}

/// An audience label such as `model-monitor`: 1 to 64 characters of `a-z 0-9 . _ : -`.
pub fn audience(text: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&text.len())
        && text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._:-".contains(&byte));
    if ok { Ok(()) } else { Err("must be 1 to 64 characters of a-z, 0-9, '.', '_', ':' and '-'".to_string()) }
}

/// An avatar URL: http or https, at most 2048 characters.
pub fn avatar_url(text: &str) -> Result<(), String> {
    let ok = text.len() <= 2048
        && (text.starts_with("https://") || text.starts_with("http://"))
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err("must be an http or https URL of at most 2048 characters".to_string()) }
}

/// Why a set of user attributes was refused: `name` is the attribute at fault, or `None`
/// when the problem is the set as a whole (too many).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeError {
    pub name: Option<String>,
    pub message: String,
}

/// Free-form user attributes (string to string), for the token service's claim mappers:
/// at most 50; each name by [`attribute_name`], each value by [`attribute_value`]. Checked
/// in name order, so the first problem reported is the same on every call.
pub fn attributes(attributes: &BTreeMap<String, String>) -> Result<(), AttributeError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(AttributeError {
            name: None,
            message: format!("at most {MAX_ATTRIBUTES} attributes are allowed, got {}", attributes.len()),
        });
    }
    for (name, value) in attributes {
        let refuse = |problem: String| AttributeError { name: Some(name.clone()), message: problem };
        attribute_name(name).map_err(|problem| refuse(format!("attribute name {name:?} {problem}")))?;
        attribute_value(value).map_err(|problem| refuse(format!("the value of attribute {name:?} {problem}")))?;
    }
    Ok(())
}

/// An attribute name: 1 to 64 characters of `a-z A-Z 0-9 _ - .`, starting with a letter,
/// and not a claim keyward's tokens set themselves ([`RESERVED_ATTRIBUTE_NAMES`]).
pub fn attribute_name(name: &str) -> Result<(), String> {
    let length_ok = (1..=MAX_ATTRIBUTE_NAME_CHARS).contains(&name.len());
    let characters_ok = name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"_-.".contains(&byte));
    let start_ok = name.bytes().next().is_some_and(|byte| byte.is_ascii_alphabetic());
    if !(length_ok && characters_ok && start_ok) {
        return Err(format!(
            "must be 1 to {MAX_ATTRIBUTE_NAME_CHARS} characters of a-z, A-Z, 0-9, '_', '-' and '.', \
             starting with a letter"
        ));
    }
    if RESERVED_ATTRIBUTE_NAMES.iter().any(|reserved| reserved.eq_ignore_ascii_case(name)) {
        return Err("is a reserved token claim (iss, sub, aud, exp, iat, nbf, jti, azp, client_id, sid, cid, \
                    scope, typ; in any case)"
            .to_string());
    }
    Ok(())
}

/// An attribute value: at most 1024 characters, no control characters (not even newlines:
/// values end up in token claims and headers of upstream requests).
pub fn attribute_value(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
        return Err(format!("must be at most {MAX_ATTRIBUTE_VALUE_CHARS} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rule: fn(&str) -> Result<(), String>, good: &[&str], bad: &[&str]) {
        for input in good {
            assert_eq!(rule(input), Ok(()), "{input:?} should pass");
        }
        for input in bad {
            assert!(rule(input).is_err(), "{input:?} should fail");
        }
    }

    #[test]
    fn usernames() {
        check(
            username,
            &["abc", "riley.ci_bot-2", &"a".repeat(64)],
            &["ab", "Riley", "a b", "é-user", &"a".repeat(65)],
        );
    }

    #[test]
    fn emails_allow_plus_addressing() {
        check(
            email,
            &["riley@example.com", "riley+airflow@gmail.com", "R.Iley@Sub.Example.org"],
            &[
                "",
                "riley",
                "riley@",
                "@example.com",
                "riley@localhost",
                "ri ley@example.com",
                "riley@-x.com",
                "a@b@c.com",
            ],
        );
        assert_ne!(email_key("riley+airflow@gmail.com"), email_key("riley+ci@gmail.com"));
        assert_eq!(email_key("Riley@Example.com"), email_key("riley@example.com"));
    }

    #[test]
    fn realm_names() {
        check(
            realm_name,
            &["a", "acme", "acme-prod_2", "0day", &"r".repeat(64)],
            &["", "-acme", "_acme", "Acme", "acme prod", "acme.prod", "acme/prod", "é", &"r".repeat(65)],
        );
    }

    #[test]
    fn object_names_refuse_slashes_and_overlong_text() {
        check(
            object_name,
            &["ci", "nightly build (prod)", &"n".repeat(100)],
            &["", " x", "a/b", "a\\b", "a\u{0}b", &"n".repeat(101)],
        );
    }

    #[test]
    fn audiences() {
        check(audience, &["model-monitor", "api:v1"], &["", "Model", "a b"]);
    }

    #[test]
    fn attribute_names() {
        check(
            attribute_name,
            &["organization", "Org.Unit", "team_2", "cost-center", "a", &"a".repeat(64), "subject", "scopes", "typx"],
            &["", "2fa", "_org", "-org", ".org", "org unit", "org/unit", "org:unit", "é", &"a".repeat(65)],
        );
    }

    #[test]
    fn reserved_claims_are_refused_as_attribute_names_in_any_case() {
        for reserved in RESERVED_ATTRIBUTE_NAMES {
            assert!(attribute_name(reserved).is_err(), "{reserved}");
            assert!(attribute_name(&reserved.to_uppercase()).is_err(), "{reserved} in upper case");
        }
        check(attribute_name, &[], &["Sub", "CLIENT_ID", "Scope", "tYp"]);
    }

    #[test]
    fn attribute_values() {
        check(
            attribute_value,
            &["", "Acme Corp", "Zoë 🦀", &"é".repeat(1024)],
            &[&"v".repeat(1025), "a\nb", "a\tb", "a\u{0}b", "a\u{7f}b", "a\u{85}b"],
        );
    }

    fn attribute_set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn attribute_sets_name_the_attribute_at_fault() {
        assert_eq!(attributes(&BTreeMap::new()), Ok(()));
        assert_eq!(attributes(&attribute_set(&[("organization", "acme"), ("team", "")])), Ok(()));

        let error = attributes(&attribute_set(&[("organization", "acme"), ("Sub", "x")])).unwrap_err();
        assert_eq!(error.name.as_deref(), Some("Sub"));
        assert!(error.message.contains("\"Sub\"") && error.message.contains("reserved"), "{}", error.message);

        let error = attributes(&attribute_set(&[("9lives", "x")])).unwrap_err();
        assert_eq!(error.name.as_deref(), Some("9lives"));
        assert!(error.message.contains("\"9lives\""), "{}", error.message);

        let error = attributes(&attribute_set(&[("note", "line\nbreak")])).unwrap_err();
        assert_eq!(error.name.as_deref(), Some("note"));
        assert!(error.message.contains("value of attribute \"note\""), "{}", error.message);
    }

    #[test]
    fn attribute_sets_hold_at_most_fifty() {
        let fifty: BTreeMap<String, String> = (0..50).map(|index| (format!("a{index}"), "v".to_string())).collect();
        assert_eq!(attributes(&fifty), Ok(()));
        let mut fifty_one = fifty;
        fifty_one.insert("a50".to_string(), "v".to_string());
        let error = attributes(&fifty_one).unwrap_err();
        assert_eq!(error.name, None);
        assert!(error.message.contains("at most 50"), "{}", error.message);
    }
}
