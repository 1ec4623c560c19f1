//! The keyward binary: commands, config and wiring. Deliberately thin: what it does is
//! parse flags, open the store, and hand over to `server`.

mod config;
mod datadir;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use config::{AliasHeaderConfig, Config, Overrides};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "keyward", version, about = "API authentication for data and ML platforms, in one binary.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, OIDC and gateway. Config: flags > KEYWARD_* env > keyward.toml > defaults.
    Serve(ServeArgs),
    /// Manage full-admin keys, on the data dir or database, even while a server runs on it.
    #[command(subcommand)]
    AdminKey(AdminKeyCommand),
    /// Bring the database schema up to date.
    Migrate(StoreArgs),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage realms' token-signing keys, on the data dir or database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The workload sidecar: forwards calls to one upstream with a fresh access token,
    /// exchanged for the run's kwr_ credential; optionally keeps the token in a file.
    Proxy(ProxyArgs),
}

#[derive(Args)]
struct ProxyArgs {
    /// keyward's URL (its token endpoint issues the tokens).
    #[arg(long, env = "KEYWARD_API_HOST")]
    server: String,
    /// File holding the run's kwr_ credential; read again at each token exchange.
    #[arg(long, env = "KEYWARD_CREDENTIAL_FILE")]
    credential_file: std::path::PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "KEYWARD_PROXY_LISTEN", default_value = "127.0.0.1:8899")]
    listen: String,
    /// Where calls go, an http:// URL [default: --server].
    #[arg(long)]
    upstream: Option<String>,
    /// Also keep a valid access token in this file (replaced atomically, mode 0600), for
    /// code that reads a token file. Off by default.
    #[arg(long, env = "KEYWARD_LEGACY_TOKEN_FILE")]
    token_file: Option<std::path::PathBuf>,
    /// The realm whose token endpoint to use.
    #[arg(long, default_value = "default")]
    realm: String,
    /// Log filter.
    #[arg(long, env = "KEYWARD_LOG", default_value = "info")]
    log: String,
    /// Print the variables a launcher exports for the run's code (KEYWARD_API_PROXY, …)
    /// and exit.
    #[arg(long)]
    print_env: bool,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rotate the realm's signing key: the new key is published now, signs after
    /// --prepublish, and the old keys leave JWKS --grace after that.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// Algorithm of the new key: ES256, RS256 or EdDSA [default: the realm's].
        #[arg(long)]
        alg: Option<String>,
        /// Seconds the new key is published before it signs [default: 600].
        #[arg(long)]
        prepublish: Option<i64>,
        /// Seconds the old keys keep verifying after the new key starts signing
        /// [default: 3600, or twice the access-token lifetime if longer].
        #[arg(long)]
        grace: Option<i64>,
    },
    /// List the realm's published keys.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the realm's JWKS (its published public keys) as JSON, for offline verifiers.
    ExportJwks {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where the store is.
#[derive(Args, Clone, Debug, Default)]
struct StoreArgs {
    /// Config file (default: ./keyward.toml when it exists).
    #[arg(long, env = "KEYWARD_CONFIG")]
    config: Option<PathBuf>,
    /// Data dir holding master.key and, by default, the SQLite database [default: ./keyward-data].
    #[arg(long, env = "KEYWARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL, e.g. postgres://user@host/db [default: SQLite in the data dir].
    #[arg(long, env = "KEYWARD_DATABASE_URL")]
    database_url: Option<String>,
    /// Realm to act in [default: default].
    #[arg(long, env = "KEYWARD_REALM")]
    realm: Option<String>,
}

impl StoreArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            realm: self.realm.clone(),
            ..Overrides::default()
        }
    }

    fn load(&self, mut overrides: Overrides) -> anyhow::Result<Config> {
        let base = self.overrides();
        overrides.data_dir = base.data_dir;
        overrides.database_url = base.database_url;
        overrides.realm = base.realm;
        Config::load(self.config.as_deref(), &overrides)
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080].
    #[arg(long, env = "KEYWARD_LISTEN")]
    listen: Option<String>,
    /// Failed authentications per client address per minute before 429 [default: 20].
    #[arg(long, env = "KEYWARD_AUTH_FAILURES_PER_MINUTE")]
    auth_failures_per_minute: Option<u32>,
    /// Largest request body accepted, in bytes [default: 65536].
    #[arg(long, env = "KEYWARD_BODY_LIMIT_BYTES")]
    body_limit_bytes: Option<usize>,
    /// Header that carries API keys besides Authorization and X-Api-Key, as NAME or
    /// NAME=AUDIENCE (accepts only keys of that audience). Repeat for several; replaces
    /// the defaults X-Domino-Api-Key and X-DMM-API-KEY=model-monitor.
    #[arg(long = "alias-header", value_parser = config::parse_alias_header)]
    alias_headers: Vec<AliasHeaderConfig>,
    /// Log filter, e.g. info or keyward_server=debug [default: info].
    #[arg(long, env = "KEYWARD_LOG")]
    log: Option<String>,
    /// URL clients reach keyward at, the base of every realm's issuer
    /// ({URL}/auth/realms/{realm}); the same on every node [default: http://LISTEN-ADDRESS].
    #[arg(long, env = "KEYWARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// A proxy whose X-Forwarded-For is believed (an address or CIDR range, e.g.
    /// 10.0.0.0/8); repeat or comma-separate for several. Requests from it are attributed
    /// to the right-most untrusted address in the header [default: none, the socket peer
    /// is the client].
    #[arg(long = "trusted-proxy", env = "KEYWARD_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<String>,
    /// An upstream route, PREFIX=URL or PREFIX=URL,audience=AUD: requests under PREFIX are
    /// authenticated and forwarded to URL with identity headers (and, with an audience, an
    /// access token). Repeat for several; replaces keyward.toml's [[routes]].
    #[arg(long = "route", value_parser = config::parse_route)]
    routes: Vec<config::RouteConfig>,
}

#[derive(Subcommand)]
enum AdminKeyCommand {
    /// Create an admin key and print it, alone, on stdout.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// A name to tell the key apart (unique among admin keys).
        #[arg(long)]
        name: Option<String>,
    },
    /// List admin keys: id, name, prefix, created, last used. Never the secret.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete an admin key, given the key itself or its id.
    Delete {
        #[command(flatten)]
        store: StoreArgs,
        /// The key (kwa_…) or its id.
        key_or_id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the audit hash chain; exits 1 if a row was changed or deleted.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The workload proxy is a sidecar: one thread serves it, with no work-stealing
    // scheduler between its client and upstream connections (docs/benchmarks.md, 5).
    let mut builder = match cli.command {
        Command::Proxy(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("keyward: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("keyward: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::AdminKey(command) => admin_key(command).await,
        Command::Migrate(store) => {
            let config = store.load(Overrides::default())?;
            datadir::open(&config).await?;
            println!("database is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(command) => keys(command).await,
        Command::Proxy(args) => proxy(args).await,
        Command::Audit(AuditCommand::Verify { store }) => {
            let config = store.load(Overrides::default())?;
            let opened = datadir::open(&config).await?;
            match opened.store.verify_audit().await? {
                Ok(count) => {
                    println!("audit chain intact: {count} events");
                    Ok(ExitCode::SUCCESS)
                }
                Err(chain_break) => {
                    println!("audit chain broken: {chain_break}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

async fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Rotate { store, alg, prepublish, grace } => {
            let config = store.load(Overrides::default())?;
            let opened = datadir::open(&config).await?;
            let realm = &opened.realm;
            let alg = match alg {
                Some(text) => keyward_core::jwt::SigningAlg::parse(&text)
                    .ok_or_else(|| anyhow::anyhow!("--alg must be ES256, RS256 or EdDSA, not {text:?}"))?,
                None => realm.token_settings.signing_alg,
            };
            let rotation = server::oidc::keys::Rotation {
                alg,
                prepublish: prepublish.map_or(server::oidc::keys::DEFAULT_PREPUBLISH, time::Duration::seconds),
                grace: grace.map_or_else(|| server::oidc::keys::default_grace(realm), time::Duration::seconds),
            };
            server::oidc::keys::check_rotation(realm, &rotation).map_err(|detail| anyhow::anyhow!("{detail}"))?;
            let sealer = opened.master_key.key_sealer();
            let kid = server::oidc::keys::rotate(&opened.store, &sealer, realm, rotation, &cli_actor()).await?;
            tokio::time::sleep(PROPAGATION).await;
            println!("{kid}");
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { store } => {
            let config = store.load(Overrides::default())?;
            let opened = datadir::open(&config).await?;
            let rows = opened.store.realm_signing_keys(opened.realm.id, time::OffsetDateTime::now_utc()).await?;
            println!("{:<24}  {:<6}  {:<20}  {:<20}  REMOVED AT", "KID", "ALG", "CREATED", "SIGNS FROM");
            for row in rows {
                println!(
                    "{:<24}  {:<6}  {:<20}  {:<20}  {}",
                    row.kid,
                    row.alg,
                    rfc3339(row.created_at),
                    rfc3339(row.activates_at),
                    row.removes_at.map(rfc3339).unwrap_or_else(|| "-".to_string())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::ExportJwks { store } => {
            let config = store.load(Overrides::default())?;
            let opened = datadir::open(&config).await?;
            let jwks =
                server::oidc::keys::export_jwks(&opened.store, &opened.master_key.key_sealer(), &opened.realm).await?;
            if jwks.keys.is_empty() {
                eprintln!(
                    "keyward: realm {:?} has no signing key yet; it gets one on first use or with `keyward keys rotate`",
                    opened.realm.name
                );
            }
            println!("{}", serde_json::to_string_pretty(&jwks)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How the CLI is named in audit events.
fn cli_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
    format!("cli:{user}")
}

/// How long a change written by the CLI takes, at most, to reach every running server
/// (their change feeds poll every 200 ms by default, and PostgreSQL also notifies).
const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(1);

async fn admin_key(command: AdminKeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminKeyCommand::Create { store, name } => {
            let config = store.load(Overrides::default())?;
            let opened = datadir::open(&config).await?;
            let name = name.unwrap_or_else(|| format!("admin-{}", time::OffsetDateTime::now_utc().unix_timestamp()));
            keyward_core::validate::object_name(&name).map_err(|detail| anyhow::anyhow!("--name {detail}"))?;
            let pepper = opened.master_key.pepper();
            let secret = server::admin_keys::create(&opened.store, &pepper, &opened.realm, &name, &cli_actor())
                .await
                .map_err(|error| match error {
                store::StoreError::Conflict { .. } => {
                    anyhow::anyhow!("an admin key named {name:?} exists; pick another --name")
                }
                other => other.into(),
            })?;
            // Running servers pick changes up within a second; returning after that
            // means the key printed works on every one of them, even in a script.
            tokio::time::sleep(PROPAGATION).await;
            println!("{}", secret.expose());
            Ok(ExitCode::SUCCESS)
        }
        AdminKeyCommand::List { store } => {
            let config = store.load(Overrides::default())?;
            let opened = datadir::open(&config).await?;
            let rows = server::admin_keys::list(&opened.store, &opened.realm).await?;
            println!("{:<24}  {:<24}  {:<8}  {:<20}  LAST USED", "ID", "NAME", "PREFIX", "CREATED");
            for row in rows {
                println!(
                    "{:<24}  {:<24}  {:<8}  {:<20}  {}",
                    row.public_id,
                    row.name,
                    row.secret_prefix,
                    rfc3339(row.created_at),
                    row.last_used_at.map(rfc3339).unwrap_or_else(|| "never".to_string())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminKeyCommand::Delete { store, key_or_id } => {
            let config = store.load(Overrides::default())?;
            let opened = datadir::open(&config).await?;
            let pepper = opened.master_key.pepper();
            match server::admin_keys::delete(&opened.store, &pepper, &opened.realm, &key_or_id, &cli_actor()).await {
                Ok(row) => {
                    tokio::time::sleep(PROPAGATION).await;
                    println!("deleted admin key {} ({})", row.public_id, row.name);
                    Ok(ExitCode::SUCCESS)
                }
                Err(store::StoreError::NotFound) => {
                    eprintln!("keyward: no active admin key matches that key or id in realm {}", opened.realm.name);
                    Ok(ExitCode::FAILURE)
                }
                Err(other) => Err(other.into()),
            }
        }
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap_or(at).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        listen: args.listen.clone(),
        auth_failures_per_minute: args.auth_failures_per_minute,
        body_limit_bytes: args.body_limit_bytes,
        alias_headers: (!args.alias_headers.is_empty()).then(|| args.alias_headers.clone()),
        log: args.log.clone(),
        public_url: args.public_url.clone(),
        trusted_proxies: (!args.trusted_proxies.is_empty()).then(|| args.trusted_proxies.clone()),
        routes: (!args.routes.is_empty()).then(|| args.routes.clone()),
        ..Overrides::default()
    };
    let config = args.store.load(overrides)?;
    init_logging(&config.log)?;
    let opened = datadir::open(&config).await?;
    let pepper = opened.master_key.pepper();
    if !opened.store.realm_has_admin(opened.realm.id).await? {
        let secret =
            server::admin_keys::create(&opened.store, &pepper, &opened.realm, "bootstrap", "keyward:bootstrap").await?;
        // The one time a secret goes to a terminal: stderr, never the log stream.
        eprintln!("keyward: realm {:?} has no admin yet; this bootstrap admin key is shown once:", opened.realm.name);
        eprintln!("{}", secret.expose());
        eprintln!("keyward: keep it safe, or make your own with `keyward admin-key create` and delete this one.");
    }
    // Bound before loading, so the issuer URL can default to the address actually bound;
    // nothing is served until the ready line.
    let listener = TcpListener::bind(&config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    let server_config = config.server_config(address)?;
    if config.public_url.is_none() && (config.database_url.is_some() || address.ip().is_unspecified()) {
        tracing::warn!(
            issuer_base = %server_config.public_url,
            "no --public-url: issuers default to this node's address, which other nodes and remote clients do not \
             share; set the same --public-url on every node"
        );
    }
    let state = server::AppState::load(opened.store.clone(), &opened.master_key, server_config).await?;
    tracing::info!(credentials = state.index.credential_count(), "index loaded");
    let background = state.spawn_background();
    // Signal handlers go in before the ready line, so a SIGTERM sent as soon as the
    // line appears is a graceful shutdown, not the default kill.
    let shutdown = shutdown_signal()?;
    println!("keyward listening on http://{address}");
    let app = server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    tracing::info!("shutting down");
    state.drain_audit_queue(std::time::Duration::from_secs(5)).await;
    for task in background {
        task.abort();
    }
    state.flush_last_used().await;
    opened.store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// JSON logs on stdout (the ready line is on stdout too; secrets never are).
async fn proxy(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let upstream_url = args.upstream.clone().unwrap_or_else(|| args.server.clone());
    let upstream = proxy::forward::Upstream::parse(&upstream_url).context("--upstream (or --server)")?;
    proxy::forward::Upstream::parse(&args.server).context("--server")?;
    if args.print_env {
        for (name, value) in proxy::environment(&args.listen, &args.server, args.token_file.as_deref()) {
            println!("{name}={value}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(&args.log)?;
    anyhow::ensure!(
        args.credential_file.exists(),
        "the credential file {} does not exist",
        args.credential_file.display()
    );
    let config = proxy::ProxyConfig {
        listen: args.listen,
        server: args.server,
        realm: args.realm,
        upstream,
        credential_file: args.credential_file,
        token_file: args.token_file,
    };
    let serving = proxy::run(config, |address| println!("keyward proxy listening on http://{address}"));
    tokio::select! {
        result = serving => result.context("keyward proxy")?,
        () = shutdown_signal()? => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).context("--log is not a valid filter")?;
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_writer(std::io::stdout)
        .try_init()
        .map_err(|error| anyhow::anyhow!("cannot start logging: {error}"))
}

/// Resolves on SIGTERM or SIGINT. The handlers are registered when this is called.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
