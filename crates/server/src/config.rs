//! The server's settings, filled in by the binary from flags, env and keyward.toml.

use std::time::Duration;

/// A header that carries an API key besides `Authorization` and `X-Api-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasHeader {
    pub name: String,
    /// When set, the header accepts only keys bound to this audience.
    pub audience: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The realm that failed authentications with no known realm are audited under.
    pub default_realm: String,
    pub alias_headers: Vec<AliasHeader>,
    /// Failed authentications per client address per minute before answering 429.
    pub auth_failures_per_minute: u32,
    pub body_limit_bytes: usize,
    /// How often the change log is polled for changes made by other processes.
    pub change_poll_interval: Duration,
    /// How often batched last-used times are written.
    pub last_used_flush_interval: Duration,
    /// How long the index may go without a successful change-feed poll before this node
    /// stops vouching for credentials (503) rather than risk honouring a revoked one.
    pub max_index_staleness: Duration,
    /// The URL clients reach this server at, without a trailing slash: the base of every
    /// realm's issuer (`{public_url}/auth/realms/{realm}`). The same on every node.
    pub public_url: String,
    /// Proxies whose `X-Forwarded-For` is believed: a request from one of these
    /// addresses is attributed to the right-most untrusted address in that header.
    /// Empty (the default): the socket peer is the client, whatever the header says.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Upstream routes: paths keyward authenticates and forwards (`crate::gateway`).
    pub routes: Vec<crate::gateway::UpstreamRoute>,
}

impl ServerConfig {
    /// Audiences a key may be bound to: those some alias header serves.
    pub fn known_audiences(&self) -> impl Iterator<Item = &str> {
        self.alias_headers.iter().filter_map(|alias| alias.audience.as_deref())
    }

    pub fn default_alias_headers() -> Vec<AliasHeader> {
        vec![
            AliasHeader { name: "X-Domino-Api-Key".to_string(), audience: None },
            AliasHeader { name: "X-DMM-API-KEY".to_string(), audience: Some("model-monitor".to_string()) },
        ]
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            default_realm: "default".to_string(),
            alias_headers: ServerConfig::default_alias_headers(),
            auth_failures_per_minute: 20,
            body_limit_bytes: 64 * 1024,
            change_poll_interval: Duration::from_millis(200),
            last_used_flush_interval: Duration::from_secs(30),
            max_index_staleness: Duration::from_secs(10),
            public_url: "http://127.0.0.1:8080".to_string(),
            trusted_proxies: Vec::new(),
            routes: Vec::new(),
        }
    }
}
