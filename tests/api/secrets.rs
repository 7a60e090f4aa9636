//! The account token appears nowhere: not in output, logs, `state`, or the
//! database files.

use aurinko_sync::fake::{FakeOptions, Faults};

use crate::helpers::{Setup, spawn_app, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_output_logs_state_or_the_database() {
    let setup = Setup {
        accounts: vec![("work", vec![("w-1", 80)]), ("home", vec![("h-1", 40)])],
        options: FakeOptions { page_size: 10, ..FakeOptions::default() },
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    app.fake.set_faults(Faults { rate: 0.2, kinds: vec![] });
    app.fake.kill_token(app.token("home"));
    let mut outputs = Vec::new();
    let mut cmd = app.command(&["run", "--catch-up"]);
    cmd.env("RUST_LOG", "trace");
    outputs.push(cmd.output().await.unwrap());
    let mut cmd = app.command(&["--log-format", "json", "run", "--catch-up"]);
    cmd.env("RUST_LOG", "trace");
    outputs.push(cmd.output().await.unwrap());
    outputs.push(app.run_binary(&["state"]).await);
    outputs.push(app.run_binary(&["state", "--json"]).await);
    let mut haystack: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, out) in outputs.into_iter().enumerate() {
        haystack.push((format!("stdout {i}"), out.stdout));
        haystack.push((format!("stderr {i}"), out.stderr));
    }
    assert!(
        haystack.iter().any(|(_, b)| text(b).contains("TRACE") || text(b).contains("\"level\":\"TRACE\"")),
        "trace logging was on"
    );
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("store.db") {
            haystack.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    for account in ["work", "home"] {
        let token = app.token(account).as_bytes().to_vec();
        for (what, bytes) in &haystack {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_slice()),
                "the {account} token leaked into {what}"
            );
        }
    }
}
