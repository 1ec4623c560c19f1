//! One config struct, filled from defaults, then `keyward.toml`, then `KEYWARD_*`
//! environment variables, then command-line flags (later wins).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use server::{AliasHeader, ServerConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AliasHeaderConfig {
    pub name: String,
    #[serde(default)]
    pub audience: Option<String>,
}

/// One `[[routes]]` entry: a path keyward authenticates and forwards to an upstream.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// e.g. "/api/jobs": this path and everything under it.
    pub prefix: String,
    /// e.g. "http://jobs.internal:8000"; the full request path is appended.
    pub upstream: String,
    /// When set, forwarded calls carry an access token of this audience for the caller.
    #[serde(default)]
    pub access_token_audience: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub realm: String,
    pub auth_failures_per_minute: u32,
    pub body_limit_bytes: usize,
    pub alias_headers: Vec<AliasHeaderConfig>,
    pub log: String,
    /// The URL clients reach keyward at (the issuer base of every realm), e.g.
    /// https://auth.example.com. Default: http:// and the bound listen address.
    pub public_url: Option<String>,
    /// Proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed. Empty: the
    /// socket peer is the client address, whatever the header says.
    pub trusted_proxies: Vec<String>,
    /// Upstream routes (`[[routes]]`).
    pub routes: Vec<RouteConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".to_string(),
            data_dir: PathBuf::from("keyward-data"),
            database_url: None,
            realm: "default".to_string(),
            auth_failures_per_minute: 20,
            body_limit_bytes: 64 * 1024,
            alias_headers: ServerConfig::default_alias_headers()
                .into_iter()
                .map(|alias| AliasHeaderConfig { name: alias.name, audience: alias.audience })
                .collect(),
            log: "info".to_string(),
            public_url: None,
            trusted_proxies: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// Keys that may come from `KEYWARD_*` variables; other `KEYWARD_` variables (such as
/// the test suite's) are not config.
const ENV_KEYS: [&str; 8] = [
    "listen",
    "data_dir",
    "database_url",
    "realm",
    "auth_failures_per_minute",
    "body_limit_bytes",
    "log",
    "public_url",
];

impl Config {
    /// Loads the config. `file` is `--config`; without it `keyward.toml` is read if it
    /// exists in the working directory. `overrides` holds only the flags that were given.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("keyward.toml")),
        }
        figment = figment.merge(Env::prefixed("KEYWARD_").only(&ENV_KEYS)).merge(Serialized::defaults(overrides));
        let config: Config = figment.extract()?;
        // Checked here, before anything is created: a start that fails later would have
        // printed (and lost) the bootstrap key.
        config.trusted_proxy_ranges()?;
        config.upstream_routes()?;
        Ok(config)
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("keyward.db").display()),
        }
    }

    /// The server's settings; `bound` is the address the listener got, which the public
    /// URL defaults to.
    pub fn server_config(&self, bound: std::net::SocketAddr) -> anyhow::Result<ServerConfig> {
        let trusted_proxies = self.trusted_proxy_ranges()?;
        anyhow::ensure!(
            self.auth_failures_per_minute >= 1,
            "auth_failures_per_minute must be at least 1: with 0 no password login could ever be checked"
        );
        Ok(ServerConfig {
            default_realm: self.realm.clone(),
            alias_headers: self
                .alias_headers
                .iter()
                .map(|alias| AliasHeader { name: alias.name.clone(), audience: alias.audience.clone() })
                .collect(),
            auth_failures_per_minute: self.auth_failures_per_minute,
            body_limit_bytes: self.body_limit_bytes,
            change_poll_interval: Duration::from_millis(200),
            last_used_flush_interval: Duration::from_secs(30),
            max_index_staleness: Duration::from_secs(10),
            public_url: self.public_url(bound),
            trusted_proxies,
            routes: self.upstream_routes()?,
        })
    }
}

impl Config {
    fn upstream_routes(&self) -> anyhow::Result<Vec<server::gateway::UpstreamRoute>> {
        let mut routes: Vec<server::gateway::UpstreamRoute> = Vec::new();
        for route in &self.routes {
            server::gateway::check_prefix(&route.prefix).map_err(|message| anyhow::anyhow!("routes: {message}"))?;
            anyhow::ensure!(
                !routes.iter().any(|other| server::gateway::is_under(&other.prefix, &route.prefix)
                    || server::gateway::is_under(&route.prefix, &other.prefix)),
                "routes: {:?} overlaps another route",
                route.prefix
            );
            let upstream = proxy::forward::Upstream::parse(&route.upstream)
                .map_err(|error| anyhow::anyhow!("routes: {}: {error}", route.prefix))?;
            if let Some(audience) = &route.access_token_audience {
                anyhow::ensure!(
                    !audience.is_empty()
                        && audience.len() <= 128
                        && audience.bytes().all(|byte| byte.is_ascii_graphic()),
                    "routes: {}: access_token_audience must be 1-128 visible ASCII characters",
                    route.prefix
                );
            }
            routes.push(server::gateway::UpstreamRoute {
                prefix: route.prefix.clone(),
                upstream,
                access_token_audience: route.access_token_audience.clone(),
            });
        }
        Ok(routes)
    }

    fn trusted_proxy_ranges(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        keyward_core::ipfilter::parse_filter(&self.trusted_proxies)
            .map_err(|error| anyhow::anyhow!("trusted_proxies: {:?} {}", error.entry, error.message))
    }

    /// The issuer base: `public_url` without a trailing slash, else `http://` and the
    /// bound address (a wildcard address is named as loopback, which is what a client on
    /// this machine reaches).
    pub fn public_url(&self, bound: std::net::SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let mut address = bound;
                if address.ip().is_unspecified() {
                    address.set_ip(std::net::IpAddr::from([127, 0, 0, 1]));
                }
                format!("http://{address}")
            }
        }
    }
}

/// The flags that were given on the command line (or via their env variables).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_failures_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_limit_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_headers: Option<Vec<AliasHeaderConfig>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteConfig>>,
}

/// Parses `--route PREFIX=URL` or `PREFIX=URL,audience=AUD`.
pub fn parse_route(text: &str) -> Result<RouteConfig, String> {
    let (prefix, rest) = text.split_once('=').ok_or_else(|| format!("{text:?} is not PREFIX=URL"))?;
    let (upstream, audience) = match rest.split_once(",audience=") {
        Some((upstream, audience)) => (upstream, Some(audience.to_string())),
        None => (rest, None),
    };
    Ok(RouteConfig { prefix: prefix.to_string(), upstream: upstream.to_string(), access_token_audience: audience })
}

/// Parses `--alias-header NAME` or `NAME=AUDIENCE`.
pub fn parse_alias_header(text: &str) -> Result<AliasHeaderConfig, String> {
    let (name, audience) = match text.split_once('=') {
        Some((name, audience)) => (name, Some(audience.to_string())),
        None => (text, None),
    };
    axum_free_header_name_check(name)?;
    Ok(AliasHeaderConfig { name: name.to_string(), audience })
}

fn axum_free_header_name_check(name: &str) -> Result<(), String> {
    let ok = !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if ok { Ok(()) } else { Err(format!("{name:?} is not a header name")) }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type.
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("keyward.toml", "listen = \"0.0.0.0:9000\"\nrealm = \"acme\"\n")?;
            jail.set_env("KEYWARD_REALM", "from-env");
            let overrides = Overrides { listen: Some("127.0.0.1:1".to_string()), ..Overrides::default() };
            let config = Config::load(None, &overrides).map_err(|error| error.to_string())?;
            assert_eq!(config.listen, "127.0.0.1:1");
            assert_eq!(config.realm, "from-env");
            assert_eq!(config.auth_failures_per_minute, 20);
            Ok(())
        });
    }

    #[test]
    fn a_throttle_that_allows_no_failure_stops_the_start() {
        let config = Config { auth_failures_per_minute: 0, ..Config::default() };
        let bound = "127.0.0.1:8080".parse().unwrap();
        let error = config.server_config(bound).map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("auth_failures_per_minute must be at least 1"), "{error}");
        let config = Config { auth_failures_per_minute: 1, ..Config::default() };
        assert!(config.server_config(bound).is_ok());
    }

    #[test]
    fn trusted_proxies_come_from_the_file_and_bad_ones_stop_the_start() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("keyward.toml", "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n")?;
            let config = Config::load(None, &Overrides::default()).map_err(|error| error.to_string())?;
            let bound = "127.0.0.1:8080".parse().map_err(|_| "address")?;
            let server = config.server_config(bound).map_err(|error| error.to_string())?;
            assert_eq!(server.trusted_proxies.len(), 2);
            jail.create_file("keyward.toml", "trusted_proxies = [\"10.0.0.1/8\"]\n")?;
            let error = Config::load(None, &Overrides::default()).map(|_| ()).unwrap_err().to_string();
            assert!(error.contains("10.0.0.0/8"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn routes_come_from_the_file_or_flags_and_bad_ones_stop_the_start() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "keyward.toml",
                "[[routes]]\nprefix = \"/api/jobs\"\nupstream = \"http://127.0.0.1:9000\"\naccess_token_audience = \"jobs\"\n",
            )?;
            let config = Config::load(None, &Overrides::default()).map_err(|error| error.to_string())?;
            assert_eq!(config.routes[0].access_token_audience.as_deref(), Some("jobs"));
            for bad in ["/api/v1/x=http://a", "/jobs=https://a", "jobs=http://a", "/jobs/=http://a"] {
                let route = parse_route(bad).map_err(|error| error.to_string())?;
                let overrides = Overrides { routes: Some(vec![route]), ..Overrides::default() };
                assert!(Config::load(None, &overrides).is_err(), "{bad}");
            }
            let twice = vec![parse_route("/a=http://x")?, parse_route("/a/b=http://y")?];
            assert!(Config::load(None, &Overrides { routes: Some(twice), ..Overrides::default() }).is_err());
            assert_eq!(parse_route("/m=http://m:1,audience=models")?.access_token_audience.as_deref(), Some("models"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("keyward.toml", "lisen = \"0.0.0.0:9000\"\n")?;
            assert!(Config::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn alias_headers_parse_with_an_optional_audience() {
        assert_eq!(
            parse_alias_header("X-DMM-API-KEY=model-monitor"),
            Ok(AliasHeaderConfig { name: "X-DMM-API-KEY".to_string(), audience: Some("model-monitor".to_string()) })
        );
        assert!(parse_alias_header("bad header").is_err());
    }
}
