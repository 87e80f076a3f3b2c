//! The user's Docker context, resolved as the docker CLI does, against the real engine.

use crate::harness::*;

#[test]
fn named_contexts_and_environment_choose_the_daemon() {
    let config = tempdir();
    let cfg = config.path().to_str().unwrap();
    let ctx = unique("ctx");
    docker(&[
        "--config",
        cfg,
        "context",
        "create",
        &ctx,
        "--docker",
        "host=unix:///var/run/docker.sock",
    ]);
    let broken = unique("ctx-broken");
    docker(&[
        "--config",
        cfg,
        "context",
        "create",
        &broken,
        "--docker",
        "host=unix:///nonexistent/broken.sock",
    ]);
    let v = Volume::new("ctx-vol");

    let with = |args: &[&str], env: &[(&str, &str)]| -> Run {
        let mut c = tool();
        c.args(args);
        for (k, val) in env {
            c.env(k, val);
        }
        c.run()
    };
    // --context, DOCKER_CONTEXT, and currentContext in config.json.
    let ls = with(&["--config", cfg, "--context", &ctx, "ls"], &[]).ok();
    assert!(ls.stdout_str().contains(&v.name));
    with(&["ls"], &[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", &ctx)]).ok();
    with(&["--config", cfg, "--context", &broken, "ls"], &[])
        .fails_with(3, &format!("context `{broken}`"))
        .fails_with(3, "unix:///nonexistent/broken.sock");
    docker(&["--config", cfg, "context", "use", &broken]);
    with(&["ls"], &[("DOCKER_CONFIG", cfg)]).fails_with(3, &broken);
    // DOCKER_HOST beats currentContext; -H with --context is a conflict.
    with(
        &["ls"],
        &[
            ("DOCKER_CONFIG", cfg),
            ("DOCKER_HOST", "unix:///var/run/docker.sock"),
        ],
    )
    .ok();
    with(
        &[
            "--config",
            cfg,
            "--context",
            &ctx,
            "-H",
            "unix:///var/run/docker.sock",
            "ls",
        ],
        &[],
    )
    .fails_with(3, "conflicting options");
    with(
        &["--config", cfg, "--context", "no-such-context", "ls"],
        &[],
    )
    .fails_with(3, "no-such-context");
}
