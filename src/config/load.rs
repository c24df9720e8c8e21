//! Reading the configuration: the layers, `${VAR}` expansion, and the one deserialization
//! (through `serde_path_to_error`) that makes every error name its field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::types::{ConfigErrors, ENV_NAME_VAR, ENV_PREFIX, Fallback, Settings};

/// Where to read configuration from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Files given with `--config`; when non-empty they replace the two `config/` files.
    pub files: Vec<PathBuf>,
    /// The folder holding `default.yaml` and `{env}.yaml` (default `config`).
    pub config_dir: Option<PathBuf>,
    /// The environment to read variables from; `None` reads the process environment.
    /// Tests pass their own map so they do not depend on, or change, the process environment.
    pub env: Option<HashMap<String, String>>,
}

impl LoadOptions {
    fn var(&self, name: &str) -> Option<String> {
        match &self.env {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// The value of `HOOKGATE_ENV`, if set and not empty.
    pub fn environment(&self) -> Option<String> {
        self.var(ENV_NAME_VAR).filter(|s| !s.trim().is_empty())
    }
}

/// Loads, merges, expands and checks the configuration: [`read`], then [`Settings::validate`].
///
/// What a source's `kind` means and the keys each kind takes are checked by
/// [`crate::sources::check`]; `crate::startup::load_settings` runs both, as `serve` and
/// `check-config` do.
///
/// # Errors
/// Every problem found, each naming the field (or file) it is about.
pub fn load(opts: &LoadOptions) -> Result<Settings, ConfigErrors> {
    let settings = read(opts)?;
    settings.validate(Settings::is_production(opts.environment().as_deref()))?;
    Ok(settings)
}

/// Loads, merges and expands the configuration into its types, without the checks of
/// [`Settings::validate`].
///
/// # Errors
/// A file that cannot be read or is not YAML, a missing variable, or a value of the wrong type
/// (naming its field).
pub fn read(opts: &LoadOptions) -> Result<Settings, ConfigErrors> {
    read_draft(opts).finish()
}

/// Like [`read`], but keeps going past errors: the settings made of what is left once every bad
/// field is taken out, so that later checks can still report their problems in the same run.
pub fn read_draft(opts: &LoadOptions) -> Draft {
    let environment = opts.environment();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    if opts.files.is_empty() {
        let dir = opts
            .config_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("config"));
        read_file(&mut files, &dir.join("default.yaml"), false, &mut errors);
        if let Some(env) = &environment {
            let file = dir.join(format!("{env}.yaml"));
            if file.is_file() {
                read_file(&mut files, &file, true, &mut errors);
            } else {
                errors.push(unknown_environment(env, &dir));
            }
        }
    } else {
        for f in &opts.files {
            read_file(&mut files, f, true, &mut errors);
        }
        // `--config` replaces the `config/` files, so the name picks no file here; but a typo
        // must not pass unnoticed either: it is `production`, or names a file that exists.
        if let Some(env) = environment.as_deref().filter(|e| *e != "production") {
            let dir = opts
                .config_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("config"));
            if !dir.join(format!("{env}.yaml")).is_file() {
                errors.push(format!(
                    "{ENV_NAME_VAR}: `{env}` names no file {} and, with --config, means nothing \
                     but `production` (the production checks); unset it or fix the name",
                    dir.join(format!("{env}.yaml")).display()
                ));
            }
        }
    }
    let mut draft = load_texts(&files, opts);
    errors.append(&mut draft.errors);
    draft.errors = errors;
    draft
}

/// A configuration read as far as it goes: [`read_draft`].
#[derive(Debug)]
pub struct Draft {
    /// What could be read (bad fields taken out), when the files could be merged at all.
    pub settings: Option<Settings>,
    errors: Vec<String>,
    /// Fields taken out of the tree because they were wrong.
    removed: Vec<String>,
}

impl Draft {
    fn failed(errors: Vec<String>) -> Self {
        Self {
            settings: None,
            errors,
            removed: Vec::new(),
        }
    }

    /// Adds problems found by later checks, but for those about a field already reported (and
    /// taken out), which would only echo the first error.
    pub fn add(&mut self, problems: impl IntoIterator<Item = String>) {
        for p in problems {
            if !self.removed.iter().any(|r| related(field_of(&p), r)) {
                self.errors.push(p);
            }
        }
    }

    /// The settings when nothing is wrong, else every error found.
    ///
    /// # Errors
    /// Every problem found, each naming its field.
    pub fn finish(self) -> Result<Settings, ConfigErrors> {
        match self.settings {
            Some(settings) if self.errors.is_empty() => Ok(settings),
            _ => Err(ConfigErrors(self.errors)),
        }
    }
}

/// `HOOKGATE_ENV` names a file that does not exist: a typo must not fall back, silently, to the
/// development file and its secrets.
fn unknown_environment(env: &str, dir: &Path) -> String {
    let mut known: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".yaml")?;
            (stem != "default").then(|| stem.to_string())
        })
        .collect();
    known.sort();
    let known = if known.is_empty() {
        String::from("there is none")
    } else {
        format!("known: {}", known.join(", "))
    };
    format!(
        "{ENV_NAME_VAR}: `{env}` names no file {} ({known}); set it to one of those, or unset it \
         for the development defaults",
        dir.join(format!("{env}.yaml")).display()
    )
}

/// Like [`load`] with `yaml` as the only configuration file and `env` as the whole environment:
/// reads no file and not the process environment (for tests and the config fuzz target).
///
/// # Errors
/// Every problem found, each naming the field it is about.
pub fn load_from_str(yaml: &str, env: &HashMap<String, String>) -> Result<Settings, ConfigErrors> {
    let settings = read_from_str(yaml, env)?;
    let production = env.get(ENV_NAME_VAR).map(String::as_str);
    settings.validate(Settings::is_production(production))?;
    Ok(settings)
}

/// Like [`read`] with `yaml` as the only configuration file and `env` as the whole environment.
///
/// # Errors
/// As [`read`].
pub fn read_from_str(yaml: &str, env: &HashMap<String, String>) -> Result<Settings, ConfigErrors> {
    read_draft_from_str(yaml, env).finish()
}

/// Like [`read_draft`] with `yaml` as the only configuration file and `env` as the whole
/// environment.
pub fn read_draft_from_str(yaml: &str, env: &HashMap<String, String>) -> Draft {
    let opts = LoadOptions {
        env: Some(env.clone()),
        ..LoadOptions::default()
    };
    load_texts(
        &[("the configuration".to_string(), yaml.to_string())],
        &opts,
    )
}

/// Merges the files' texts (named for errors) with the environment and expands.
fn load_texts(files: &[(String, String)], opts: &LoadOptions) -> Draft {
    let env: Vec<(String, String)> = match &opts.env {
        Some(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        // Variables that are not valid UTF-8 cannot be hookgate's (nor expand into a value).
        None => std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    };
    if let Err(e) = refuse_subscripts(files, &env) {
        return Draft::failed(e.0);
    }
    let mut errors = Vec::new();
    let mut builder = config::Config::builder();
    for (name, text) in files {
        // Parse each file alone first, so that a YAML error names the file.
        if let Err(e) = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Yaml))
            .build()
        {
            errors.push(format!("{name}: not valid YAML: {e}"));
        }
        builder = builder.add_source(config::File::from_str(text, config::FileFormat::Yaml));
    }
    if !errors.is_empty() {
        return Draft::failed(errors);
    }
    let env_source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(env.into_iter().collect()));
    builder = builder.add_source(env_source);
    let merged = match builder.build() {
        Ok(m) => m,
        Err(e) => return Draft::failed(vec![format!("configuration could not be merged: {e}")]),
    };
    let mut tree: serde_json::Value = match merged.try_deserialize() {
        Ok(t) => t,
        Err(e) => return Draft::failed(vec![format!("configuration could not be read: {e}")]),
    };

    let mut fallbacks = Vec::new();
    expand_vars(
        &mut tree,
        &mut String::new(),
        opts,
        &mut errors,
        &mut fallbacks,
    );
    if !errors.is_empty() {
        return Draft::failed(errors);
    }
    let mut draft = deserialize_all(tree);
    if let Some(settings) = &mut draft.settings {
        settings.fallbacks = fallbacks;
    }
    draft
}

/// Most errors a file can hold, found in one run.
const MAX_ERRORS: usize = 64;

/// Deserializes the tree, reporting every bad field rather than the first: serde stops at the
/// first error, so each one is noted, the field it names is taken out of the tree, and the rest
/// is read again, until the tree reads or nothing more can be taken out.
fn deserialize_all(mut tree: serde_json::Value) -> Draft {
    let mut errors = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..MAX_ERRORS {
        match serde_path_to_error::deserialize::<_, Settings>(&tree) {
            Ok(settings) => {
                return Draft {
                    settings: Some(settings),
                    errors,
                    removed,
                };
            }
            Err(e) => {
                let segments: Vec<String> = e
                    .path()
                    .iter()
                    .map(|s| match s {
                        serde_path_to_error::Segment::Seq { index } => format!("[{index}]"),
                        other => other.to_string(),
                    })
                    .collect();
                let path = e.path().to_string();
                let message = field_error(&path, &e.into_inner().to_string());
                // A field taken out for an earlier error is not "required" on top of that.
                if !removed.iter().any(|r| related(field_of(&message), r)) {
                    errors.push(message);
                }
                if !remove(&mut tree, &segments) {
                    break;
                }
                removed.push(segments_path(&segments));
            }
        }
    }
    Draft {
        settings: None,
        errors,
        removed,
    }
}

/// The field an error message names (what comes before its first `: `).
fn field_of(message: &str) -> &str {
    message.split_once(": ").map_or(message, |(f, _)| f)
}

/// Whether one field is the other, or holds it.
fn related(a: &str, b: &str) -> bool {
    let holds = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    holds(a, b) || holds(b, a)
}

fn segments_path(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if !out.is_empty() && !s.starts_with('[') {
            out.push('.');
        }
        out.push_str(s);
    }
    out
}

/// Takes the value at `path` (map keys and `[i]` indices) out of the tree; for a path that names
/// nothing (a missing field), takes out its parent instead. False when nothing could be taken.
fn remove(tree: &mut serde_json::Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = &mut *tree;
    for seg in parents {
        let next = match node {
            serde_json::Value::Object(map) => map.get_mut(seg.as_str()),
            serde_json::Value::Array(items) => index_of(seg).and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    let taken = match node {
        serde_json::Value::Object(map) => map.remove(last.as_str()).is_some(),
        serde_json::Value::Array(items) => match index_of(last) {
            Some(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    };
    taken || remove(tree, parents)
}

fn index_of(segment: &str) -> Option<usize> {
    segment.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Refuses `[` in variable names and mapping keys. The `config` crate reads `key[N]` as "element
/// N of list `key`" and grows the list to N first, so one key like `sources[200000000]` would
/// take gigabytes before any check could run (found by the `config_yaml` fuzz target).
fn refuse_subscripts(
    files: &[(String, String)],
    env: &[(String, String)],
) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    for (name, _) in env {
        if name.starts_with(ENV_PREFIX) && name.contains('[') {
            errors.push(format!(
                "{name}: `[` is not allowed in a variable name (set a list as comma-separated values)"
            ));
        }
    }
    for (file, text) in files {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start().trim_start_matches("- ");
            if line.starts_with('#') {
                continue;
            }
            // The key: what comes before the first `: ` (or a final `:`), outside flow values.
            let key = line
                .split_once(": ")
                .map(|(k, _)| k)
                .or_else(|| line.strip_suffix(':'));
            if let Some(key) = key.filter(|k| !k.starts_with(['{', '[', '"', '\''])) {
                if key.contains('[') {
                    errors.push(format!(
                        "{file}, line {}: `[` is not allowed in a key (`{}`)",
                        n + 1,
                        key.chars().take(40).collect::<String>()
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Names the field in a deserialization error, pointing into a missing field when that is the error.
fn field_error(path: &str, inner: &str) -> String {
    let path = if path == "." { "" } else { path };
    if let Some(missing) = inner
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        let full = if path.is_empty() {
            missing.to_string()
        } else {
            format!("{path}.{missing}")
        };
        return format!("{full}: is required");
    }
    if path.is_empty() {
        inner.to_string()
    } else {
        format!("{path}: {inner}")
    }
}

fn read_file(
    files: &mut Vec<(String, String)>,
    path: &Path,
    required: bool,
    errors: &mut Vec<String>,
) {
    match std::fs::read_to_string(path) {
        Ok(text) => files.push((path.display().to_string(), text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
        Err(e) => errors.push(format!("{}: cannot be read: {e}", path.display())),
    }
}

/// Replaces `${VAR}` and `${VAR:-fallback}` in every string of the tree.
fn expand_vars(
    v: &mut serde_json::Value,
    path: &mut String,
    opts: &LoadOptions,
    errors: &mut Vec<String>,
    fallbacks: &mut Vec<Fallback>,
) {
    match v {
        serde_json::Value::String(s) if s.contains("${") => match expand_str(s, opts) {
            Ok((new, used)) => {
                *s = new;
                if let Some(variable) = used {
                    fallbacks.push(Fallback {
                        field: path.clone(),
                        variable,
                    });
                }
            }
            Err(e) => errors.push(format!("{path}: {e}")),
        },
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_vars(item, path, opts, errors, fallbacks);
                path.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                expand_vars(item, path, opts, errors, fallbacks);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Expands `s`; with the first variable whose `:-fallback` was used, if any.
fn expand_str(s: &str, opts: &LoadOptions) -> Result<(String, Option<String>), String> {
    let mut used = None;
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "`${` without a closing `}`".to_string())?;
        let expr = &after[..end];
        let (name, fallback) = match expr.split_once(":-") {
            Some((n, f)) => (n, Some(f)),
            None => (expr, None),
        };
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("`${{{expr}}}` is not a valid variable reference"));
        }
        match (opts.var(name), fallback) {
            (Some(v), _) if !v.is_empty() || fallback.is_none() => out.push_str(&v),
            (_, Some(f)) => {
                out.push_str(f);
                used.get_or_insert_with(|| name.to_string());
            }
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (set it, or write `${{{name}:-fallback}}`)"
                ));
            }
            (Some(v), None) => out.push_str(&v),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::config::de::{ByteSize, HumanDuration};
    use crate::config::types::LogFormat;

    pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub(crate) const MINIMAL: &str = r#"
admin:
  token: admin-token-1234567890
store:
  url: sqlite://x.db
sources:
  kratos:
    kind: kratos
    path: /kratos
    verify: { scheme: api_key, header: X-Api-Key, secrets: ["kratos-key-0123456789"] }
"#;

    pub(crate) fn opts(files: Vec<PathBuf>, env: &[(&str, &str)]) -> LoadOptions {
        LoadOptions {
            files,
            config_dir: None,
            env: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    pub(crate) fn errors_of(r: Result<Settings, ConfigErrors>) -> Vec<String> {
        match r {
            Ok(_) => panic!("expected configuration errors"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn a_minimal_file_loads_with_built_in_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "a.yaml", MINIMAL);
        let s = load(&opts(vec![f], &[])).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert_eq!(s.server.body_limit, ByteSize(1024 * 1024));
        assert_eq!(
            s.server.request_timeout,
            HumanDuration(Duration::from_secs(10))
        );
        assert_eq!(s.sources["kratos"].kind, "kratos");
    }

    #[test]
    fn durations_and_sizes_are_read_in_human_units() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &format!("{MINIMAL}server:\n  body_limit: 64KiB\n  request_timeout: 250ms\n"),
        );
        let s = load(&opts(vec![f], &[])).unwrap();
        assert_eq!(s.server.body_limit, ByteSize(64 * 1024));
        assert_eq!(s.server.request_timeout.0, Duration::from_millis(250));
    }

    #[test]
    fn environment_variables_override_nested_keys_including_secret_lists() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "a.yaml", MINIMAL);
        let s = load(&opts(
            vec![f],
            &[
                ("HOOKGATE__SERVER__LISTEN", "127.0.0.1:1234"),
                (
                    "HOOKGATE__SOURCES__KRATOS__VERIFY__SECRETS",
                    "new-key-0123456789,old-key-0123456789",
                ),
                ("HOOKGATE__SERVER__MAX_CONCURRENT_REQUESTS", "7"),
            ],
        ))
        .unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:1234");
        assert_eq!(s.server.max_concurrent_requests, 7);
        let secrets: Vec<&str> = s.sources["kratos"]
            .verify
            .secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["new-key-0123456789", "old-key-0123456789"]);
    }

    #[test]
    fn variables_in_values_are_expanded_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = MINIMAL.replace(
            "[\"kratos-key-0123456789\"]",
            "[\"${KRATOS_KEY}\", \"${OTHER:-fallback-0123456789}\"]",
        );
        let f = write(dir.path(), "a.yaml", &text);
        let s = load(&opts(
            vec![f.clone()],
            &[("KRATOS_KEY", "from-env-0123456789")],
        ))
        .unwrap();
        let secrets: Vec<&str> = s.sources["kratos"]
            .verify
            .secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["from-env-0123456789", "fallback-0123456789"]);

        let errs = errors_of(load(&opts(vec![f], &[])));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("sources.kratos.verify.secrets[0]"),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("KRATOS_KEY"), "{}", errs[0]);
    }

    #[test]
    fn a_missing_secret_list_is_named_by_its_full_path() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{MINIMAL}  abp:\n    kind: abp\n    path: /abp\n    verify: {{ scheme: abp_signature }}\n"
        );
        let f = write(dir.path(), "a.yaml", &text);
        let errs = errors_of(load(&opts(vec![f], &[])));
        assert_eq!(
            errs,
            ["sources.abp.verify.secrets: at least one secret is required"]
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &format!("{MINIMAL}server:\n  request_timeout: soon\n"),
        );
        let errs = errors_of(load(&opts(vec![f], &[])));
        assert!(
            errs[0].starts_with("server.request_timeout: `soon` is not a duration"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn a_production_start_refuses_placeholder_secrets_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &MINIMAL
                .replace("[\"kratos-key-0123456789\"]", "[\"dev-only-kratos-key\"]")
                .replace("admin-token-1234567890", "change-me-to-a-real-token"),
        );
        assert!(
            load(&opts(vec![f.clone()], &[])).is_ok(),
            "outside production these are fine"
        );
        let errs = errors_of(load(&opts(vec![f], &[("HOOKGATE_ENV", "production")])));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("admin.token: is a development or placeholder value")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with(
                "sources.kratos.verify.secrets[0]: is a development or placeholder value"
            )),
            "{errs:?}"
        );
        assert!(
            errs.iter().all(|e| !e.contains("dev-only-kratos-key")),
            "errors never echo a secret"
        );
    }

    #[test]
    fn the_environment_file_is_layered_over_the_default_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "default.yaml", MINIMAL);
        write(dir.path(), "staging.yaml", "log:\n  format: json\n");
        let mut o = opts(vec![], &[("HOOKGATE_ENV", "staging")]);
        o.config_dir = Some(dir.path().to_path_buf());
        let s = load(&o).unwrap();
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.sources.len(), 1);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &MINIMAL.replace("sqlite://x.db", "sqlite://u:pw@x.db"),
        );
        let s = load(&opts(vec![f], &[])).unwrap();
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("kratos-key-0123456789") && !dbg.contains("admin-token-1234567890"),
            "{dbg}"
        );
    }

    #[test]
    fn load_from_str_layers_expands_and_checks_like_load() {
        let text = MINIMAL.replace(
            "[\"kratos-key-0123456789\"]",
            "[\"${KRATOS_KEY:-fallback-0123456789}\"]",
        );
        let env: HashMap<String, String> = [
            ("KRATOS_KEY", "from-env-0123456789"),
            ("HOOKGATE__SERVER__LISTEN", "127.0.0.1:1234"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = load_from_str(&text, &env).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:1234");
        assert_eq!(s.server.body_limit, ByteSize(1024 * 1024));
        assert_eq!(
            s.sources["kratos"].verify.secrets[0].expose_secret(),
            "from-env-0123456789"
        );
        let s = load_from_str(&text, &HashMap::new()).unwrap();
        assert_eq!(
            s.sources["kratos"].verify.secrets[0].expose_secret(),
            "fallback-0123456789"
        );

        let production: HashMap<String, String> =
            [(ENV_NAME_VAR.to_string(), "production".to_string())].into();
        let errs = errors_of(load_from_str(
            &MINIMAL.replace("admin-token-1234567890", "change-me-to-a-real-token"),
            &production,
        ));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("admin.token: is a development or placeholder value")),
            "{errs:?}"
        );
        let errs = errors_of(load_from_str("sources: [", &HashMap::new()));
        assert!(
            errs[0].starts_with("the configuration: not valid YAML"),
            "{errs:?}"
        );
    }

    #[test]
    fn list_subscripts_in_keys_and_variable_names_are_refused_before_merging() {
        // Each of these made the `config` crate grow a list to the index (gigabytes).
        let errs = errors_of(load_from_str("sources[200000000]: 1\n", &HashMap::new()));
        assert!(
            errs[0].contains("line 1: `[` is not allowed in a key"),
            "{errs:?}"
        );
        let env: HashMap<String, String> = [(
            "HOOKGATE__SOURCES__KR[-200000001]__VERIFY__SECRETS".to_string(),
            "x".to_string(),
        )]
        .into();
        let errs = errors_of(load_from_str(MINIMAL, &env));
        assert!(
            errs[0].starts_with(
                "HOOKGATE__SOURCES__KR[-200000001]__VERIFY__SECRETS: `[` is not allowed"
            ),
            "{errs:?}"
        );
        // Brackets in values (flow lists) are fine.
        assert!(load_from_str(MINIMAL, &HashMap::new()).is_ok());
        assert!(MINIMAL.contains("[\"kratos-key-0123456789\"]"));
    }

    #[test]
    fn a_hookgate_env_that_names_no_file_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "default.yaml", MINIMAL);
        write(dir.path(), "production.yaml", "log:\n  format: json\n");
        let mut o = opts(vec![], &[("HOOKGATE_ENV", "prod")]);
        o.config_dir = Some(dir.path().to_path_buf());
        let errs = errors_of(load(&o));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("HOOKGATE_ENV: `prod` names no file")
                && errs[0].contains("known: production"),
            "{errs:?}"
        );
        o.env = Some([("HOOKGATE_ENV".to_string(), "production".to_string())].into());
        assert_eq!(load(&o).unwrap().log.format, LogFormat::Json);

        // With --config the name picks no file, but a typo is still named.
        let own = write(dir.path(), "own.yaml", MINIMAL);
        let mut o = opts(vec![own], &[("HOOKGATE_ENV", "prod")]);
        o.config_dir = Some(dir.path().to_path_buf());
        let errs = errors_of(load(&o));
        assert!(
            errs[0].starts_with("HOOKGATE_ENV: `prod` names no file")
                && errs[0].contains("with --config"),
            "{errs:?}"
        );
        for fine in ["production", "default"] {
            o.env = Some([("HOOKGATE_ENV".to_string(), fine.to_string())].into());
            assert!(load(&o).is_ok(), "{fine}");
        }
    }

    #[test]
    fn development_values_are_refused_off_loopback_naming_their_variable() {
        let text = MINIMAL
            .replace(
                "[\"kratos-key-0123456789\"]",
                "[\"${KRATOS_KEY:-dev-only-kratos-api-key}\"]",
            )
            .replace("sources:", "server:\n  listen: 0.0.0.0:8080\nsources:");
        let errs = errors_of(load_from_str(&text, &HashMap::new()));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(
                "sources.kratos.verify.secrets[0]: is a development or placeholder value, \
                 refused because server.listen is 0.0.0.0:8080"
            ) && errs[0].contains("set KRATOS_KEY"),
            "{errs:?}"
        );
        assert!(!errs[0].contains("dev-only-kratos-api-key"), "never echoed");

        // The variable set: fine anywhere.
        let env: HashMap<String, String> = [(
            "KRATOS_KEY".to_string(),
            "a-real-secret-0123456789".to_string(),
        )]
        .into();
        let s = load_from_str(&text, &env).unwrap();
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());

        // On loopback: accepted, with a warning naming the field and its variable.
        let local = text.replace("0.0.0.0:8080", "127.0.0.1:8080");
        let s = load_from_str(&local, &HashMap::new()).unwrap();
        assert_eq!(
            s.warnings(),
            [
                "development secrets in use, accepted only while both listeners are on loopback: \
              sources.kratos.verify.secrets[0] (set KRATOS_KEY)"
            ]
        );
        // The admin listener counts too.
        let admin = local.replace("store:", "  listen: 0.0.0.0:9090\nstore:");
        let errs = errors_of(load_from_str(&admin, &HashMap::new()));
        assert!(
            errs[0].contains("refused because admin.listen is 0.0.0.0:9090"),
            "{errs:?}"
        );
    }

    #[test]
    fn short_secrets_are_refused_unless_the_source_allows_them() {
        let text = MINIMAL.replace("kratos-key-0123456789", "short-key");
        let errs = errors_of(load_from_str(&text, &HashMap::new()));
        assert_eq!(
            errs,
            [
                "sources.kratos.verify.secrets[0]: is 9 bytes; a secret of scheme `api_key` needs at \
              least 16 (make one with `openssl rand -hex 32`), or set \
              sources.kratos.allow_short_secret: true for a sender that cannot send a longer one"
            ]
        );
        let allowed = text.replace(
            "    kind: kratos",
            "    kind: kratos\n    allow_short_secret: true",
        );
        let s = load_from_str(&allowed, &HashMap::new()).unwrap();
        assert_eq!(
            s.warnings(),
            [
                "sources.kratos.verify.secrets[0] is 9 bytes, shorter than 16 (allowed by \
              sources.kratos.allow_short_secret)"
            ]
        );
        let token = MINIMAL.replace("admin-token-1234567890", "admin-tok");
        let errs = errors_of(load_from_str(&token, &HashMap::new()));
        assert!(errs[0].starts_with("admin.token: is 9 bytes"), "{errs:?}");
    }

    #[test]
    fn every_unknown_key_and_bad_value_is_reported_in_one_run() {
        let text = format!(
            "{MINIMAL}server:\n  lisen: 127.0.0.1:1\n  request_timeout: soon\nlog:\n  levle: debug\n\
             metrics:\n  on: true\n"
        )
        .replace("  url: sqlite://x.db", "  url: sqlite://x.db\n  queue_capacty: 5");
        let errs = errors_of(load_from_str(&text, &HashMap::new()));
        for field in [
            "server.lisen: unknown field",
            "server.request_timeout: `soon` is not a duration",
            "log.levle: unknown field",
            "metrics: unknown field",
            "store.queue_capacty: unknown field",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(field)),
                "{field} in {errs:?}"
            );
        }
        assert_eq!(errs.len(), 5, "no echoes of the same mistake: {errs:?}");
    }

    #[test]
    fn a_later_file_drops_an_inherited_header_with_null() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(dir.path(), "base.yaml", MINIMAL);
        let basic = |header: &str| {
            format!(
                "sources:\n  kratos:\n    verify: {{ scheme: basic, {header}secrets: [\"kratos:s3cret\"] }}\n"
            )
        };
        let without = write(dir.path(), "without.yaml", &basic(""));
        let errs = errors_of(load(&opts(vec![base.clone(), without], &[])));
        assert!(
            errs[0].starts_with("sources.kratos.verify.header: only `api_key`")
                && errs[0].contains("set `header: null` there"),
            "{errs:?}"
        );
        let with = write(dir.path(), "with.yaml", &basic("header: null, "));
        let s = load(&opts(vec![base, with], &[])).unwrap();
        assert_eq!(
            s.sources["kratos"].verify.scheme,
            crate::config::SchemeSettings::Basic
        );
    }

    #[test]
    fn a_retention_shorter_than_the_senders_retries_is_warned_about() {
        let short = MINIMAL.replace(
            "  url: sqlite://x.db",
            "  url: sqlite://x.db\n  retention: 1h",
        );
        let s = load_from_str(&short, &HashMap::new()).unwrap();
        assert!(
            s.warnings()
                .iter()
                .any(|w| w.starts_with("store.retention is 1h: a sender's retry")),
            "{:?}",
            s.warnings()
        );
        for fine in ["0", "1d", "30d"] {
            let text = MINIMAL.replace(
                "  url: sqlite://x.db",
                &format!("  url: sqlite://x.db\n  retention: {fine}"),
            );
            let s = load_from_str(&text, &HashMap::new()).unwrap();
            assert!(s.warnings().is_empty(), "{fine}: {:?}", s.warnings());
        }
    }
}
