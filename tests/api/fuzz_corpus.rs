//! The fuzz corpus as a regression test: every kept input of `tests/fuzz/corpus/<target>/` and
//! every failing input of `tests/fuzz/regressions/<target>/` goes through the same function the
//! libFuzzer target calls (`hookgate::fuzz::TARGETS`). A failure the fuzzer found fails here
//! until it is fixed. `tests/scripts/fuzz.sh` grows and minimizes the corpus.
//!
//! Inputs the fuzzer kept for exhausting memory (`oom-*`) or time (`timeout-*`) run in a child
//! process with its address space and run time capped, so that a regression cannot take the
//! machine's memory with it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Fewer kept inputs than this for a target means its corpus went missing.
const MIN_CORPUS_FILES: usize = 20;
/// `target:path` of the one input the child process runs.
const REPLAY_ENV: &str = "HOOKGATE_FUZZ_REPLAY";
/// The child's address space, in KiB (`ulimit -v`): as the fuzzer's `-rss_limit_mb=2048`.
const CHILD_MEMORY_KIB: u64 = 2 * 1024 * 1024;
/// The child's run time: as the fuzzer's `-timeout=10`, with room for a debug build.
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn target(name: &str) -> hookgate::fuzz::Target {
    hookgate::fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

/// Runs `path` through `name` in a child process with capped memory and time; the failure, if any.
fn replay_in_child(name: &str, path: &Path) -> Option<String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {CHILD_MEMORY_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fuzz_corpus::replay_one_input_in_a_child_process",
            "--test-threads=1",
        ])
        .env(REPLAY_ENV, format!("{name}:{}", path.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + CHILD_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (!status.success()).then(|| {
                format!("fails in a child process limited to {CHILD_MEMORY_KIB} KiB ({status})")
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Some(format!("takes longer than {CHILD_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child side of [`replay_in_child`]; does nothing in a normal test run.
#[test]
fn replay_one_input_in_a_child_process() {
    let Ok(spec) = std::env::var(REPLAY_ENV) else {
        return;
    };
    let (name, path) = spec.split_once(':').unwrap();
    target(name)(&std::fs::read(path).unwrap());
}

#[test]
fn every_kept_fuzz_input_runs_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let targets_on_disk: Vec<String> = files(&root.join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    let mut names: Vec<&str> = hookgate::fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    let mut on_disk: Vec<&str> = targets_on_disk.iter().map(String::as_str).collect();
    on_disk.sort_unstable();
    assert_eq!(
        names, on_disk,
        "hookgate::fuzz::TARGETS and tests/fuzz/fuzz_targets list the same targets"
    );

    // Inputs that fail are reported together at the end (the panic hook also prints each one).
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (name, run) in hookgate::fuzz::TARGETS {
        let corpus = files(&root.join("corpus").join(name));
        let regressions = files(&root.join("regressions").join(name));
        counts.push((*name, corpus.len(), regressions.len()));
        for path in corpus.iter().chain(&regressions) {
            let rel = path.strip_prefix(&root).unwrap_or(path).display();
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if file_name.starts_with("oom-") || file_name.starts_with("timeout-") {
                if let Some(why) = replay_in_child(name, path) {
                    failures.push(format!("tests/fuzz/{rel}: {why}"));
                }
                continue;
            }
            let data = std::fs::read(path).unwrap();
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("tests/fuzz/{rel}: {msg}"));
            }
        }
    }

    let thin: Vec<_> = counts
        .iter()
        .filter(|(_, corpus, _)| *corpus < MIN_CORPUS_FILES)
        .collect();
    assert!(
        thin.is_empty(),
        "a fuzz corpus went missing (fewer than {MIN_CORPUS_FILES} inputs): {thin:?}"
    );
    assert!(
        failures.is_empty(),
        "{} fuzz input(s) fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
