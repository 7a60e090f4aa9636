//! Secrets appear nowhere: neither account tokens nor the webhook signing
//! secret, in output, logs (trace level, every fault injected), `state`, or
//! the database files; and the database files are private.

use std::time::Duration;

use aurinko_sync::fake::{FakeOptions, Faults, WebhookFaults};

use crate::helpers::{SIGNING_SECRET, Setup, spawn_app, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_output_logs_state_or_the_database() {
    let setup = Setup {
        accounts: vec![("work", vec![("w-1", 80)]), ("home", vec![("h-1", 40)])],
        options: FakeOptions { page_size: 10, ..FakeOptions::default() },
        webhook: true,
        sync_extra: "poll_interval_secs = 1\n",
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    app.fake.set_faults(Faults { rate: 0.2, kinds: vec![] });
    let mut outputs = Vec::new();
    let mut cmd = app.command(&["run", "--catch-up"]);
    cmd.env("RUST_LOG", "trace");
    outputs.push(cmd.output().await.unwrap());
    let mut cmd = app.command(&["--log-format", "json", "run", "--catch-up"]);
    cmd.env("RUST_LOG", "trace");
    outputs.push(cmd.output().await.unwrap());

    // The daemon at trace level, receiving notifications, some badly signed.
    let mut daemon = app.command(&["run"]);
    daemon.env("RUST_LOG", "trace");
    // Returns once the daemon says where it listens (and `public_url` says it too).
    let daemon = app.start_daemon(daemon).await;
    let mut subscribe = app.command(&["subscribe"]);
    subscribe.env("RUST_LOG", "trace");
    outputs.push(subscribe.output().await.unwrap());
    app.fake.set_webhook_faults(WebhookFaults { bad_signature: 0.3, stale_timestamp: 0.2, duplicates: 1 });
    app.fake.mutate_random(app.token("work"), 10);
    app.fake.kill_token(app.token("home"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let path = app.dir.path().join(format!("store.db{suffix}"));
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} while the daemon runs", path.display());
        }
    }
    daemon.terminate();
    outputs.push(daemon.wait_with_output().await);
    outputs.push(app.run_binary(&["state"]).await);
    outputs.push(app.run_binary(&["state", "--json"]).await);

    let mut haystack: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, out) in outputs.into_iter().enumerate() {
        haystack.push((format!("stdout {i}"), out.stdout));
        haystack.push((format!("stderr {i}"), out.stderr));
    }
    let all_text: String = haystack.iter().map(|(_, b)| text(b)).collect();
    assert!(all_text.contains("TRACE") || all_text.contains("\"level\":\"TRACE\""), "trace logging was on");
    assert!(all_text.contains("webhook request refused"), "bad notifications were logged");
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("store.db") {
            haystack.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    let secrets = [
        ("the work token", app.token("work").to_string()),
        ("the home token", app.token("home").to_string()),
        ("the signing secret", SIGNING_SECRET.to_string()),
    ];
    for (name, secret) in secrets {
        let needle = secret.as_bytes();
        for (what, bytes) in &haystack {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{name} leaked into {what}");
        }
    }
}
