#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (cargo fuzz) against the kept corpus, minimizes the
# corpus, keeps every crash as a regression input and writes tests/fuzz/last-run.md.
#
#   tests/scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; with no TARGET every target runs. One process on one core
# per target, one target after the other (no -jobs/-workers: those switch libFuzzer to its
# multi-process mode, which writes its output to fuzz-N.log files instead). Needs the nightly toolchain (rustup) and cargo-fuzz,
# which is installed when missing.
#
# Environment:
#   FUZZ_SANITIZER    none (default: hookgate forbids unsafe code, so ASan would only watch
#                     its dependencies, at a cost on every execution) or address
#   FUZZ_NO_CMIN=1    skip the corpus minimization
#
# After a crash the target goes on in libFuzzer's fork mode for the rest of its time, so one
# shallow bug does not hide the others. Of the crash, OOM and timeout inputs found, the smallest
# per distinct failure (panic site) is copied into tests/fuzz/regressions/<target>/, where
# `cargo test --test api fuzz_corpus` replays it (and fails until the bug is fixed).
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_DIR=tests/fuzz
SECONDS_PER_TARGET=${1:-60}
shift || true
SANITIZER=${FUZZ_SANITIZER:-none}

if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || ((SECONDS_PER_TARGET < 1)); then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

ALL_TARGETS=()
for f in "$FUZZ_DIR"/fuzz_targets/*.rs; do
    ALL_TARGETS+=("$(basename "$f" .rs)")
done
if (($# > 0)); then
    TARGETS=("$@")
    for t in "${TARGETS[@]}"; do
        [[ -f $FUZZ_DIR/fuzz_targets/$t.rs ]] || {
            echo "unknown target $t (known: ${ALL_TARGETS[*]})" >&2
            exit 2
        }
    done
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

# The toolchain and cargo-fuzz.
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "the nightly toolchain is required: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing; installing it"
    cargo install cargo-fuzz --locked
fi

# Payloads may be large; credentials travel in headers; a configuration file is in between.
max_len() {
    case $1 in
        kratos | kratos_respond | identus | abp_envelope | abp_bare | standard | json_kind) echo 65536 ;;
        config_yaml) echo 16384 ;;
        *) echo 4096 ;;
    esac
}
dict() {
    case $1 in
        kratos | kratos_respond | identus | abp_envelope | abp_bare | standard | json_kind) echo "$FUZZ_DIR/dict/json.dict" ;;
        config_yaml) echo "$FUZZ_DIR/dict/yaml.dict" ;;
        *) echo "$FUZZ_DIR/dict/headers.dict" ;;
    esac
}

BIN_DIR=$FUZZ_DIR/target/x86_64-unknown-linux-gnu/release
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
# What failed, for telling distinct bugs apart: the panic site, else the kind of failure.
failure_key() {
    local out
    out=$(timeout 60 "$BIN_DIR/$1" -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$SCRATCH/" "$2" 2>&1 || true)
    if grep -q "panicked at" <<<"$out"; then
        grep -m1 -o "panicked at [^ ]*" <<<"$out" | sed "s|panicked at ||; s|:$||; s|^$PWD/||"
    elif grep -q "out-of-memory" <<<"$out"; then
        echo "out-of-memory"
    elif grep -q "ERROR: libFuzzer: timeout" <<<"$out"; then
        echo "timeout"
    elif grep -q "overflowed its stack" <<<"$out"; then
        echo "stack overflow"
    elif grep -q "ERROR: libFuzzer" <<<"$out"; then
        grep -m1 -o "ERROR: libFuzzer: .*" <<<"$out"
    else
        echo "does not fail now"
    fi
}

echo "building the fuzz targets (sanitizer: $SANITIZER)"
cargo +nightly fuzz build --fuzz-dir "$FUZZ_DIR" -s "$SANITIZER"

LOG_DIR=$FUZZ_DIR/artifacts/logs
mkdir -p "$LOG_DIR"
SUMMARY=()
RUN_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
RUN_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
TOTAL_CRASHES=0
SLOW_NOTES=()

for t in "${TARGETS[@]}"; do
    corpus=$FUZZ_DIR/corpus/$t
    artifacts=$FUZZ_DIR/artifacts/$t
    regressions=$FUZZ_DIR/regressions/$t
    mkdir -p "$corpus" "$artifacts"
    len=$(max_len "$t")
    # Artifacts already there are not new findings.
    before=$(mktemp)
    find "$artifacts" -maxdepth 1 -type f -printf '%f\n' | sort >"$before"

    echo
    echo "== $t: ${SECONDS_PER_TARGET}s, max_len $len, corpus $(find "$corpus" -type f | wc -l) file(s)"
    flags=(-max_len="$len" -rss_limit_mb=2048 -timeout=10 -dict="$(dict "$t")"
        -artifact_prefix="$artifacts/")
    start=$(date +%s)
    log=$LOG_DIR/$t.log
    rc=0
    cargo +nightly fuzz run --fuzz-dir "$FUZZ_DIR" -s "$SANITIZER" "$t" "$corpus" -- \
        "${flags[@]}" -max_total_time="$SECONDS_PER_TARGET" -report_slow_units=1 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    execs=${execs:-0}
    slowest=$(grep -o 'Slowest unit: [0-9]* s' "$log" | grep -o '[0-9]\+' | sort -n | tail -1 || true)
    left=$((SECONDS_PER_TARGET - ($(date +%s) - start)))
    if ((rc != 0)); then
        echo "   crashed (exit code $rc) after $((SECONDS_PER_TARGET - left))s; log: $log"
        grep -m1 -A2 "panicked at\|ERROR: libFuzzer" "$log" | sed 's/^/   | /' || true
        if ((left > 0)); then
            # Keep fuzzing past the known crash: fork mode runs the target in a child process
            # and goes on after crashes, timeouts and OOMs (each one still leaves an artifact).
            echo "   continuing in fork mode for ${left}s"
            flog=$LOG_DIR/$t.fork.log
            cargo +nightly fuzz run --fuzz-dir "$FUZZ_DIR" -s "$SANITIZER" "$t" "$corpus" -- \
                "${flags[@]}" -max_total_time="$left" -fork=1 -ignore_crashes=1 \
                -ignore_timeouts=1 -ignore_ooms=1 >"$flog" 2>&1 || true
            n=$(grep -o '^#[0-9]*: cov' "$flog" | tail -1 | grep -o '[0-9]*' || true)
            execs=$((execs + ${n:-0}))
        fi
    fi
    elapsed=$(($(date +%s) - start))

    # One regression input per distinct failure (the panic site, or OOM/timeout/signal): the
    # smallest. Failures already kept in regressions/ are not kept twice.
    declare -A kept=()
    for f in "$regressions"/*; do
        [[ -f $f ]] && kept[$(failure_key "$t" "$f")]=$f
    done
    declare -A best=()
    artifacts_found=0
    while IFS= read -r f; do
        case $f in
            crash-* | oom-* | timeout-* | leak-*) artifacts_found=$((artifacts_found + 1)) ;;
            slow-unit-*)
                SLOW_NOTES+=("$t: $artifacts/$f")
                continue
                ;;
            *) continue ;;
        esac
        key=$(failure_key "$t" "$artifacts/$f")
        [[ -n ${kept[$key]:-} ]] && continue
        if [[ -z ${best[$key]:-} ]] || (($(stat -c%s "$artifacts/$f") < $(stat -c%s "${best[$key]}"))); then
            best[$key]=$artifacts/$f
        fi
    done < <(comm -13 "$before" <(find "$artifacts" -maxdepth 1 -type f -printf '%f\n' | sort))
    rm -f "$before"
    new=()
    for key in "${!best[@]}"; do
        mkdir -p "$regressions"
        cp "${best[$key]}" "$regressions/"
        new+=("$(basename "${best[$key]}") ($key)")
        echo "   new failure: $key -> $regressions/$(basename "${best[$key]}")"
    done
    unset kept best
    TOTAL_CRASHES=$((TOTAL_CRASHES + ${#new[@]}))

    if [[ ${FUZZ_NO_CMIN:-} != 1 ]]; then
        echo "   minimizing the corpus"
        cargo +nightly fuzz cmin --fuzz-dir "$FUZZ_DIR" -s "$SANITIZER" "$t" "$corpus" -- \
            -max_len="$len" -rss_limit_mb=2048 -timeout=10 >"$LOG_DIR/$t.cmin.log" 2>&1 || {
            echo "   cmin failed; see $LOG_DIR/$t.cmin.log"
        }
    fi
    # No kept input over 64 KiB.
    find "$corpus" -type f -size +64k -print -delete | sed 's/^/   removed (over 64 KiB): /'
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(du -sb "$corpus" | cut -f1)

    crash_list=${new[*]:-}
    printf '   %s: %ss, %s executions, corpus %s files / %s bytes, %s failing input(s), %s new distinct failure(s) %s\n' \
        "$t" "$elapsed" "$execs" "$files" "$bytes" "$artifacts_found" "${#new[@]}" "$crash_list"
    SUMMARY+=("| $t | $RUN_DATE | $RUN_COMMIT | $elapsed | $execs | $files ($bytes B) | $artifacts_found | ${#new[@]}${crash_list:+: $crash_list} | ${slowest:-0}s |")
done

# The summary, kept in the repository: one row per target, from the last run that included it.
REPORT=$FUZZ_DIR/last-run.md
declare -A ROWS=()
if [[ -f $REPORT ]]; then
    while IFS= read -r line; do
        name=$(awk -F'|' '{ gsub(/ /, "", $2); print $2 }' <<<"$line")
        ROWS[$name]=$line
    done < <(grep '^| [a-z_]* | [0-9]' "$REPORT" || true)
fi
for line in "${SUMMARY[@]}"; do
    name=$(awk -F'|' '{ gsub(/ /, "", $2); print $2 }' <<<"$line")
    ROWS[$name]=$line
done
{
    echo "# Last fuzz run"
    echo
    echo "Written by \`tests/scripts/fuzz.sh\`; each row is from the last run that included the target."
    echo
    echo "- last command: \`tests/scripts/fuzz.sh $SECONDS_PER_TARGET${*:+ $*}\`"
    echo "- toolchain: $(rustc +nightly --version), $(cargo +nightly fuzz --version)"
    echo "- sanitizer: $SANITIZER; one process per target; \`-rss_limit_mb=2048 -timeout=10 -report_slow_units=1\`;"
    echo "  after a crash the rest of the time runs in fork mode (\`-fork=1 -ignore_crashes=1\`), far slower"
    echo "- commit: the HEAD the run started from (the working tree may have differed)"
    echo
    echo "| target | run (UTC) | commit | seconds | executions | corpus after cmin | failing inputs | new distinct failures (kept in regressions/) | slowest unit |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"
    for name in $(printf '%s\n' "${!ROWS[@]}" | sort); do
        echo "${ROWS[$name]}"
    done
    echo
    if ((${#SLOW_NOTES[@]} > 0)); then
        echo "Slow units (not kept):"
        printf -- '- %s\n' "${SLOW_NOTES[@]}"
        echo
    fi
    echo "The smallest input of each new distinct failure is copied into"
    echo "\`tests/fuzz/regressions/<target>/\`; \`cargo test --test api fuzz_corpus\` replays them with the corpus."
} >"$REPORT"

echo
cat "$FUZZ_DIR/last-run.md"
if ((TOTAL_CRASHES > 0)); then
    echo
    echo "$TOTAL_CRASHES new crash input(s); see tests/fuzz/regressions/" >&2
    exit 1
fi
