//! Loading: compilation cache, configuration checks and linking errors.

mod support;

use engine::{ComponentConfig, ComponentSource, DirGrant, Engine, EngineConfig, LoadError};
use support::{guest, relaxed};

fn cwasm_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_cached_and_bad_cache_files_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let wasm = guest("guest_echo");
    let engine = Engine::new(EngineConfig::default().with_cache_dir(cache.path())).unwrap();
    engine
        .load("echo", ComponentSource::Path(wasm.clone()), relaxed())
        .unwrap();
    let files = cwasm_files(cache.path());
    assert_eq!(files.len(), 1, "one cache entry");
    let good_len = std::fs::metadata(&files[0]).unwrap().len();

    // Same bytes, new engine: a cache hit (no second entry) that works.
    let engine = Engine::new(EngineConfig::default().with_cache_dir(cache.path())).unwrap();
    let echo = engine
        .load(
            "echo",
            ComponentSource::Bytes(std::fs::read(&wasm).unwrap()),
            relaxed(),
        )
        .unwrap();
    assert_eq!(cwasm_files(cache.path()), files);
    let ev = support::event("1", "/s", "t");
    let publisher = std::sync::Arc::new(engine::CollectingPublisher::default());
    assert_eq!(echo.handle(ev.clone(), publisher).await.unwrap(), vec![ev]);

    // A corrupt entry is replaced, not trusted. (Replace the file rather than truncate it:
    // loaded entries are memory-mapped, so the cache itself only ever renames new files in.)
    std::fs::remove_file(&files[0]).unwrap();
    std::fs::write(&files[0], b"garbage").unwrap();
    engine
        .load("echo", ComponentSource::Path(wasm), relaxed())
        .unwrap();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), good_len);
}

#[test]
fn invalid_bytes_do_not_compile() {
    let engine = Engine::new(EngineConfig::default()).unwrap();
    let err = engine
        .load(
            "junk",
            ComponentSource::Bytes(b"not wasm".to_vec()),
            ComponentConfig::default(),
        )
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
}

#[test]
fn a_missing_file_is_a_read_error() {
    let engine = Engine::new(EngineConfig::default()).unwrap();
    let err = engine
        .load(
            "gone",
            ComponentSource::Path("/no/such.wasm".into()),
            ComponentConfig::default(),
        )
        .unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
}

#[test]
fn limits_and_grants_are_checked_at_load() {
    let engine = Engine::new(EngineConfig {
        max_memory_bytes: 32 << 20,
        ..EngineConfig::default()
    })
    .unwrap();
    let mut too_big = relaxed();
    too_big.limits.max_memory_bytes = 64 << 20;
    let err = engine
        .load("echo", ComponentSource::Path(guest("guest_echo")), too_big)
        .unwrap_err();
    assert!(matches!(err, LoadError::ComponentConfig { .. }), "{err}");

    let mut missing_dir = relaxed();
    missing_dir.limits.max_memory_bytes = 16 << 20;
    missing_dir.grants.dirs.push(DirGrant {
        host: "/no/such/dir".into(),
        guest: "/data".into(),
    });
    let err = engine
        .load(
            "echo",
            ComponentSource::Path(guest("guest_echo")),
            missing_dir,
        )
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
}

#[test]
fn a_handler_component_is_not_an_http_component() {
    let engine = support::engine();
    let err = engine
        .load_http(
            "echo",
            ComponentSource::Path(guest("guest_echo")),
            relaxed(),
        )
        .unwrap_err();
    assert!(matches!(err, LoadError::Link { .. }), "{err}");
}

/// Engines of one process (parallel tests, several apps) filling the same cold cache at once:
/// every load succeeds and the entry left behind is whole.
#[test]
fn concurrent_loads_into_a_cold_cache_all_succeed() {
    let cache = tempfile::tempdir().unwrap();
    let wasm = guest("guest_echo");
    let start = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        let loads: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let engine =
                        Engine::new(EngineConfig::default().with_cache_dir(cache.path())).unwrap();
                    start.wait();
                    engine
                        .load("echo", ComponentSource::Path(wasm.clone()), relaxed())
                        .map(|_| ())
                })
            })
            .collect();
        for load in loads {
            load.join().unwrap().unwrap();
        }
    });
    let files = cwasm_files(cache.path());
    assert_eq!(files.len(), 1, "one cache entry: {files:?}");
    let engine = Engine::new(EngineConfig::default().with_cache_dir(cache.path())).unwrap();
    engine
        .load("echo", ComponentSource::Path(wasm), relaxed())
        .unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".cwasm"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
