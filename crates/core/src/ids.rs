//! Public ids: 24 lowercase hex digits (96 random bits), the shape platform clients
//! already expect for user and service-account ids. Internal row numbers never leave
//! the server, so ids reveal nothing about how many objects exist.

use rand_core::CryptoRng;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicId(String);

impl PublicId {
    pub fn generate(rng: &mut impl CryptoRng) -> PublicId {
        let mut bytes = [0u8; 12];
        rng.fill_bytes(&mut bytes);
        PublicId(hex::encode(bytes))
    }

    /// Accepts exactly 24 lowercase hex digits; anything else cannot name an object.
    pub fn parse(text: &str) -> Option<PublicId> {
        let well_formed =
            text.len() == 24 && text.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        well_formed.then(|| PublicId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for PublicId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::PublicId;

    #[test]
    fn only_24_lowercase_hex_digits_parse() {
        assert!(PublicId::parse("0123456789abcdef01234567").is_some());
        for bad in ["", "0123456789ABCDEF01234567", "0123456789abcdef0123456", "../etc/passwd00000000000"] {
            assert!(PublicId::parse(bad).is_none(), "{bad}");
        }
    }
}
