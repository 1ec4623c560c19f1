//! The audit hash chain. Each event's hash is SHA-256 over the previous event's hash
//! and the event's canonical bytes, so changing or deleting a stored row breaks the
//! chain at that row, and `keyward audit verify` can say where.

use aws_lc_rs::digest;

/// The hash that precedes the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The fields of an audit event that the chain protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFields<'a> {
    pub seq: i64,
    pub at_unix_ms: i64,
    pub realm: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub client_ip: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
}

impl AuditFields<'_> {
    /// Length-prefixed fields, so no two different events share a byte string.
    fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at_unix_ms.to_be_bytes());
        for field in [self.realm, self.actor, self.action, self.target, self.client_ip, self.result, self.detail] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// This event's hash, given the previous event's hash.
    pub fn chain_hash(&self, previous: &[u8; 32]) -> [u8; 32] {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(previous);
        context.update(&self.canonical_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }
}

/// Where a stored chain stops being what was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("event {seq} was changed: its hash does not match its contents")]
    Changed { seq: i64 },
    #[error("events between {after} and {next} are missing")]
    Missing { after: i64, next: i64 },
    #[error("the newest events after {last} were deleted (the chain head says {head})")]
    TailDeleted { last: i64, head: i64 },
}

/// Verifies events in sequence order. `stored` is each event with the previous hash
/// and hash it was stored with; `head_seq` is the sequence the chain head records.
pub fn verify_chain<'a>(
    stored: impl IntoIterator<Item = (AuditFields<'a>, [u8; 32], [u8; 32])>,
    head_seq: i64,
) -> Result<i64, ChainBreak> {
    let mut expected_previous = GENESIS_HASH;
    let mut last_seq = 0;
    for (fields, previous, hash) in stored {
        if fields.seq != last_seq + 1 || previous != expected_previous {
            return Err(ChainBreak::Missing { after: last_seq, next: fields.seq });
        }
        if fields.chain_hash(&previous) != hash {
            return Err(ChainBreak::Changed { seq: fields.seq });
        }
        expected_previous = hash;
        last_seq = fields.seq;
    }
    if last_seq != head_seq {
        return Err(ChainBreak::TailDeleted { last: last_seq, head: head_seq });
    }
    Ok(last_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, actor: &str) -> AuditFields<'_> {
        AuditFields {
            seq,
            at_unix_ms: 1_000 * seq,
            realm: "default",
            actor,
            action: "user.create",
            target: "user:abc",
            client_ip: "127.0.0.1",
            result: "ok",
            detail: "",
        }
    }

    fn chain(actors: &[&'static str]) -> Vec<(AuditFields<'static>, [u8; 32], [u8; 32])> {
        let mut previous = GENESIS_HASH;
        let mut out = Vec::new();
        for (index, actor) in actors.iter().enumerate() {
            let fields = event(index as i64 + 1, actor);
            let hash = fields.chain_hash(&previous);
            out.push((fields, previous, hash));
            previous = hash;
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(chain(&["a", "b", "c"]), 3), Ok(3));
        assert_eq!(verify_chain(Vec::new(), 0), Ok(0));
    }

    #[test]
    fn a_changed_row_is_found() {
        let mut rows = chain(&["a", "b", "c"]);
        rows[1].0.actor = "mallory";
        assert_eq!(verify_chain(rows, 3), Err(ChainBreak::Changed { seq: 2 }));
    }

    #[test]
    fn a_deleted_row_is_found() {
        let mut rows = chain(&["a", "b", "c"]);
        rows.remove(1);
        assert_eq!(verify_chain(rows, 3), Err(ChainBreak::Missing { after: 1, next: 3 }));
        let mut rows = chain(&["a", "b", "c"]);
        rows.pop();
        assert_eq!(verify_chain(rows, 3), Err(ChainBreak::TailDeleted { last: 2, head: 3 }));
    }

    #[test]
    fn fields_cannot_be_shifted_between_columns() {
        let mut left = event(1, "ab");
        left.action = "c";
        let mut right = event(1, "a");
        right.action = "bc";
        assert_ne!(left.chain_hash(&GENESIS_HASH), right.chain_hash(&GENESIS_HASH));
    }
}
