use crate::harness::{Backend, Env};
use crate::on_each_store;
use std::time::Duration;

async fn cli_admin_keys_work_and_stop_working_within_a_second_on_a_running_server(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let (ok, stdout, stderr) = env.cli(&["admin-key", "create", "--name", "ops"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "create prints the key alone: {stdout:?}");
    let key = lines[0].to_string();
    assert!(key.starts_with("kwa_"));
    server.wait_for_status("/api/v1/users", &key, 200, Duration::from_secs(1)).await;

    let (ok, listing, _) = env.cli(&["admin-key", "list"]);
    assert!(ok);
    assert!(listing.contains("ops") && listing.contains("bootstrap"), "{listing}");
    assert!(listing.contains(&key[..8]), "the prefix is listed: {listing}");
    assert!(!listing.contains(&key) && !listing.contains(&server.bootstrap_key()), "never the secret: {listing}");

    let (ok, _, stderr) = env.cli(&["admin-key", "create", "--name", "ops"]);
    assert!(!ok && stderr.contains("pick another --name"), "{stderr}");

    let (ok, stdout, stderr) = env.cli(&["admin-key", "delete", &key]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("deleted admin key"), "{stdout}");
    server.wait_for_status("/api/v1/users", &key, 401, Duration::from_secs(1)).await;

    // Deleting by id works too.
    let (_, second, _) = env.cli(&["admin-key", "create", "--name", "second"]);
    let second = second.trim().to_string();
    server.wait_for_status("/api/v1/users", &second, 200, Duration::from_secs(1)).await;
    let (_, listing, _) = env.cli(&["admin-key", "list"]);
    let id = listing
        .lines()
        .find(|line| line.contains("second"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap()
        .to_string();
    let (ok, _, stderr) = env.cli(&["admin-key", "delete", &id]);
    assert!(ok, "{stderr}");
    server.wait_for_status("/api/v1/users", &second, 401, Duration::from_secs(1)).await;
    let (ok, _, stderr) = env.cli(&["admin-key", "delete", &id]);
    assert!(!ok && stderr.contains("no active admin key"), "{stderr}");
}
on_each_store!(cli_admin_keys_work_and_stop_working_within_a_second_on_a_running_server);

async fn the_bootstrap_key_is_printed_once_and_only_on_stderr(backend: Backend) {
    let env = Env::new(backend);
    let mut server = env.serve(&[]);
    let key = server.bootstrap_key();
    assert_eq!(server.stderr_text().matches(&key).count(), 1);
    assert!(!server.stdout_text().contains(&key));
    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}");
    let server = env.serve(&[]);
    assert!(!server.stderr_text().contains("kwa_"), "{}", server.stderr_text());
    assert_eq!(server.get("/api/v1/users", &key).await.status, 200);
    let mode = std::fs::metadata(env.data_dir().join("master.key"))
        .map(|meta| std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
}
on_each_store!(the_bootstrap_key_is_printed_once_and_only_on_stderr);

#[test]
fn a_node_with_another_master_key_refuses_to_start_on_the_database() {
    let env = Env::new(Backend::Sqlite);
    let (ok, _, stderr) = env.cli(&["migrate"]);
    assert!(ok, "{stderr}");
    std::fs::write(env.data_dir().join("master.key"), format!("{}\n", "ab".repeat(32))).unwrap();
    let (ok, _, stderr) = env.cli(&["admin-key", "list"]);
    assert!(!ok && stderr.contains("not the one this database was created with"), "{stderr}");
}
