//! The published xRegistry samples (CloudEvents registry scenarios in ../shared/spec) pass the
//! same check as the documents Spindle builds, against the registry model's document schema;
//! and a document with a dangling reference or a wrong shape does not.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn spec_dir() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/xregistry/cloudevents");
    dir.is_dir().then_some(dir)
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_published_sample_passes_the_check() {
    let Some(dir) = spec_dir() else {
        eprintln!("skipped: ../shared/spec is not here");
        return;
    };
    let model = read(&dir.join("schemas/document-schema.json"));
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("samples/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let problems = registry::check_document(&read(&path), Some(&model)).unwrap();
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} samples");
}

#[test]
fn the_check_refuses_what_breaks_the_model() {
    let Some(dir) = spec_dir() else {
        return;
    };
    let model = read(&dir.join("schemas/document-schema.json"));
    let wrong = json!({
        "endpoints": { "e": { "usage": ["listener"], "envelope": "CloudEvents/1.0" } }
    });
    let problems = registry::check_document(&wrong, Some(&model)).unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.pointer.starts_with("/endpoints/e")),
        "{problems:?}"
    );
}
