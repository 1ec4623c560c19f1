//! Starts the real `keyward` binary on an ephemeral port against SQLite or a fresh
//! PostgreSQL database, and talks to it over HTTP.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a test's store lives.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres { url: String },
}

impl Backend {
    /// A fresh PostgreSQL database when `KEYWARD_TEST_DATABASE_URL` is set.
    pub async fn postgres() -> Option<Backend> {
        let base = std::env::var("KEYWARD_TEST_DATABASE_URL").ok()?;
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&base).await.expect("connect to KEYWARD_TEST_DATABASE_URL");
        let name = format!("kw_test_{}", random_suffix());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut connection).await.expect("create database");
        let url = match base.rsplit_once('/') {
            Some((prefix, _)) => format!("{prefix}/{name}"),
            None => panic!("KEYWARD_TEST_DATABASE_URL must end with /DATABASE"),
        };
        Some(Backend::Postgres { url })
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Runs the test body on SQLite and, when configured, on PostgreSQL.
#[macro_export]
macro_rules! on_each_store {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::harness::Backend::postgres().await {
                    Some(backend) => super::$name(backend).await,
                    None => eprintln!("skipped: set KEYWARD_TEST_DATABASE_URL to run this on PostgreSQL"),
                }
            }
        }
    };
}

/// A data dir and store shared by the servers and CLI runs of one test.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

impl Env {
    pub fn new(backend: Backend) -> Env {
        Env { dir: tempfile::tempdir().expect("temp dir"), backend }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn store_args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_string(), self.data_dir().display().to_string()];
        if let Backend::Postgres { url } = &self.backend {
            args.push("--database-url".to_string());
            args.push(url.clone());
        }
        args
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
        command.current_dir(self.dir.path());
        for name in [
            "KEYWARD_DATA_DIR",
            "KEYWARD_DATABASE_URL",
            "KEYWARD_LISTEN",
            "KEYWARD_REALM",
            "KEYWARD_CONFIG",
            "KEYWARD_PUBLIC_URL",
            "KEYWARD_TRUSTED_PROXIES",
            "KEYWARD_API_HOST",
            "KEYWARD_CREDENTIAL_FILE",
            "KEYWARD_LEGACY_TOKEN_FILE",
            "KEYWARD_PROXY_LISTEN",
        ] {
            command.env_remove(name);
        }
        command
    }

    /// Runs a CLI command on this env's store; returns (exit ok, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.command().args(args).args(self.store_args()).output().expect("run keyward");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs a command that takes no store flags; returns (exit ok, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.command().args(args).output().expect("run keyward");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Starts `keyward serve` and waits for its ready line.
    pub fn serve(&self, extra: &[&str]) -> Server {
        self.serve_on("127.0.0.1:0", extra)
    }

    /// Starts `keyward serve --listen LISTEN` and waits for its ready line.
    pub fn serve_on(&self, listen: &str, extra: &[&str]) -> Server {
        let mut args: Vec<String> = vec!["serve".into(), "--listen".into(), listen.into()];
        args.extend(self.store_args());
        args.extend(extra.iter().map(|arg| arg.to_string()));
        self.start(&args, "keyward listening on ")
    }

    /// Starts `keyward proxy` with `args` and waits for its ready line.
    pub fn proxy(&self, args: &[&str]) -> Server {
        let mut all: Vec<String> = vec!["proxy".into(), "--listen".into(), "127.0.0.1:0".into()];
        all.extend(args.iter().map(|arg| arg.to_string()));
        self.start(&all, "keyward proxy listening on ")
    }

    /// Runs the binary with `args` and waits for the stdout line starting with `ready`,
    /// whose rest is the URL.
    fn start(&self, args: &[String], ready: &str) -> Server {
        let mut child =
            self.command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start keyward");
        let stdout = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr = Arc::new(Mutex::new(Vec::<String>::new()));
        collect(child.stdout.take().expect("stdout"), stdout.clone());
        collect(child.stderr.take().expect("stderr"), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let found = stdout.lock().unwrap().iter().find_map(|line| line.strip_prefix(ready).map(str::to_string));
            if let Some(url) = found {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("keyward {args:?} exited with {status}: {:?}", stderr.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "keyward {args:?} did not become ready: {:?}", stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        };
        Server { child, url, stdout, stderr, http: reqwest::Client::new() }
    }
}

impl Drop for Env {
    /// Drops the test's PostgreSQL database (its servers are gone by now: they are
    /// declared after the env, so they are dropped first).
    fn drop(&mut self) {
        let Backend::Postgres { url } = &self.backend else { return };
        let (Some((base, name)), Ok(admin_url)) = (url.rsplit_once('/'), std::env::var("KEYWARD_TEST_DATABASE_URL"))
        else {
            return;
        };
        let _ = base;
        let name = name.to_string();
        let dropper = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut connection) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut connection)
                        .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(line) => lines.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
}

pub struct Server {
    child: Child,
    pub url: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

/// An HTTP answer: status, headers and the body parsed as JSON when it is JSON.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }
}

/// How a request presents its credential.
#[derive(Clone, Copy)]
pub enum Via<'a> {
    None,
    Bearer(&'a str),
    Header(&'a str, &'a str),
}

impl Server {
    /// The bootstrap admin key printed on stderr at first start. stderr is read by its
    /// own thread, which may lag behind the ready line on stdout on a loaded machine.
    pub fn bootstrap_key(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.stderr.lock().unwrap().iter().find(|line| line.starts_with("kwa_")).cloned();
            if let Some(key) = found {
                return key;
            }
            assert!(Instant::now() < deadline, "no bootstrap key on stderr: {}", self.stderr_text());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub async fn call(&self, method: &str, path: &str, via: Via<'_>, body: Option<Value>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        request = match via {
            Via::None => request,
            Via::Bearer(key) => request.bearer_auth(key),
            Via::Header(name, key) => request.header(name, key),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send request");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.call("GET", path, Via::Header("X-Api-Key", key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call("POST", path, Via::Header("X-Api-Key", key), Some(body)).await
    }

    /// Exchanges `subject` (any credential) for an access token at realm `realm`'s token
    /// endpoint (RFC 8693), with `extra` form fields such as `scope`; answers the status
    /// and the JSON body.
    pub async fn exchange(&self, realm: &str, subject: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", subject),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ];
        form.extend_from_slice(extra);
        let answer = self
            .http
            .post(format!("{}/auth/realms/{realm}/protocol/openid-connect/token", self.url))
            .form(&form)
            .send()
            .await
            .expect("send request");
        (answer.status().as_u16(), answer.json().await.expect("a JSON body"))
    }

    /// Polls until `path` answers `status` for `key`; returns how long that took.
    pub async fn wait_for_status(&self, path: &str, key: &str, status: u16, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.get(path, key).await.status == status {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "{path} did not answer {status} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "keyward did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a user as `admin` and returns its id.
pub async fn create_user(server: &Server, admin: &str, username: &str) -> String {
    let answer = server
        .post(
            "/api/v1/users",
            admin,
            serde_json::json!({"username": username, "email": format!("{username}@example.com"), "firstName": "Ada", "lastName": "Lovelace"}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()["id"].as_str().expect("id").to_string()
}

/// Grants `role` to the user `user_id` as `admin`.
pub async fn grant_role(server: &Server, admin: &str, user_id: &str, role: &str) {
    let path = format!("/api/v1/users/{user_id}/roles/{role}");
    let answer = server.call("PUT", &path, Via::Bearer(admin), None).await;
    assert!(answer.status < 300, "{role}: {}", answer.text);
}

/// Issues an API key for `user_id` as `admin` and returns (key id, secret).
pub async fn create_key(server: &Server, admin: &str, user_id: &str, body: Value) -> (String, String) {
    let answer = server.post(&format!("/api/v1/users/{user_id}/api-keys"), admin, body).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let json = answer.json();
    (json["id"].as_str().expect("id").to_string(), json["secret"].as_str().expect("secret").to_string())
}
