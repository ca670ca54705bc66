//! `spindle new` then `spindle build`, as a new user runs them: the generated project must
//! build as generated, and its component must load and answer through `spindle up`.

use std::process::Command;

#[test]
fn a_new_project_builds_as_generated() {
    let dir = tempfile::tempdir().unwrap();
    let spindle = env!("CARGO_BIN_EXE_spindle");
    let out = Command::new(spindle)
        .args(["new", "rust-cloudevents", "greeter"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = dir.path().join("greeter");
    assert!(project.join("spindle.toml").is_file());
    assert!(project.join("src/lib.rs").is_file());

    // A second `new` into the same place is refused rather than overwriting.
    let again = Command::new(spindle)
        .args(["new", "rust-cloudevents", "greeter"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());

    let build = Command::new(spindle)
        .arg("build")
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "spindle build failed:\n{}\n{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    assert!(
        project
            .join("target/wasm32-wasip2/release/greeter.wasm")
            .is_file()
    );
}

#[test]
fn unknown_templates_and_bad_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spindle = env!("CARGO_BIN_EXE_spindle");
    let out = Command::new(spindle)
        .args(["new", "cobol", "x"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rust-cloudevents"));
    let out = Command::new(spindle)
        .args(["new", "rust-cloudevents", "Bad_Name"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}
