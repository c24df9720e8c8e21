//! Reading the configuration: the layers, `${VAR}` expansion, and the one deserialization
//! (through `serde_path_to_error`) that makes every error name its field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::types::{ConfigErrors, ENV_NAME_VAR, ENV_PREFIX, Settings};

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
    let environment = opts.environment();
    let mut files = Vec::new();
    if opts.files.is_empty() {
        let dir = opts
            .config_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("config"));
        read_file(&mut files, &dir.join("default.yaml"), false)?;
        if let Some(env) = &environment {
            read_file(&mut files, &dir.join(format!("{env}.yaml")), false)?;
        }
    } else {
        for f in &opts.files {
            read_file(&mut files, f, true)?;
        }
    }
    load_texts(&files, opts)
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
fn load_texts(files: &[(String, String)], opts: &LoadOptions) -> Result<Settings, ConfigErrors> {
    let env: Vec<(String, String)> = match &opts.env {
        Some(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        // Variables that are not valid UTF-8 cannot be hookgate's (nor expand into a value).
        None => std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    };
    refuse_subscripts(files, &env)?;
    let mut builder = config::Config::builder();
    for (name, text) in files {
        // Parse each file alone first, so that a YAML error names the file.
        if let Err(e) = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Yaml))
            .build()
        {
            return Err(ConfigErrors::one(format!("{name}: not valid YAML: {e}")));
        }
        builder = builder.add_source(config::File::from_str(text, config::FileFormat::Yaml));
    }
    let env_source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(env.into_iter().collect()));
    builder = builder.add_source(env_source);
    let merged = builder
        .build()
        .map_err(|e| ConfigErrors::one(format!("configuration could not be merged: {e}")))?;
    let mut tree: serde_json::Value = merged
        .try_deserialize()
        .map_err(|e| ConfigErrors::one(format!("configuration could not be read: {e}")))?;

    let mut errors = Vec::new();
    expand_vars(&mut tree, &mut String::new(), opts, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let settings: Settings = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        ConfigErrors::one(field_error(&path, &inner))
    })?;
    Ok(settings)
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
) -> Result<(), ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            files.push((path.display().to_string(), text));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(()),
        Err(e) => Err(ConfigErrors::one(format!(
            "{}: cannot be read: {e}",
            path.display()
        ))),
    }
}

/// Replaces `${VAR}` and `${VAR:-fallback}` in every string of the tree.
fn expand_vars(
    v: &mut serde_json::Value,
    path: &mut String,
    opts: &LoadOptions,
    errors: &mut Vec<String>,
) {
    match v {
        serde_json::Value::String(s) if s.contains("${") => match expand_str(s, opts) {
            Ok(new) => *s = new,
            Err(e) => errors.push(format!("{path}: {e}")),
        },
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_vars(item, path, opts, errors);
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
                expand_vars(item, path, opts, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn expand_str(s: &str, opts: &LoadOptions) -> Result<String, String> {
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
            (_, Some(f)) => out.push_str(f),
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
    Ok(out)
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
    verify: { scheme: api_key, header: X-Api-Key, secrets: ["k1"] }
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
        assert_eq!(s.server.listen, "0.0.0.0:8080");
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
                    "new-key,old-key",
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
        assert_eq!(secrets, ["new-key", "old-key"]);
    }

    #[test]
    fn variables_in_values_are_expanded_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = MINIMAL.replace("[\"k1\"]", "[\"${KRATOS_KEY}\", \"${OTHER:-fallback}\"]");
        let f = write(dir.path(), "a.yaml", &text);
        let s = load(&opts(vec![f.clone()], &[("KRATOS_KEY", "from-env")])).unwrap();
        let secrets: Vec<&str> = s.sources["kratos"]
            .verify
            .secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["from-env", "fallback"]);

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
                .replace("[\"k1\"]", "[\"dev-only-kratos-key\"]")
                .replace("admin-token-1234567890", "change-me"),
        );
        assert!(
            load(&opts(vec![f.clone()], &[])).is_ok(),
            "outside production these are fine"
        );
        let errs = errors_of(load(&opts(vec![f], &[("HOOKGATE_ENV", "production")])));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("admin.token: is a placeholder")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("sources.kratos.verify.secrets[0]: is a placeholder")),
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
            !dbg.contains("k1\"") && !dbg.contains("admin-token-1234567890"),
            "{dbg}"
        );
    }

    #[test]
    fn load_from_str_layers_expands_and_checks_like_load() {
        let text = MINIMAL.replace("[\"k1\"]", "[\"${KRATOS_KEY:-fallback}\"]");
        let env: HashMap<String, String> = [
            ("KRATOS_KEY", "from-env"),
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
            "from-env"
        );
        let s = load_from_str(&text, &HashMap::new()).unwrap();
        assert_eq!(
            s.sources["kratos"].verify.secrets[0].expose_secret(),
            "fallback"
        );

        let production: HashMap<String, String> =
            [(ENV_NAME_VAR.to_string(), "production".to_string())].into();
        let errs = errors_of(load_from_str(
            &MINIMAL.replace("admin-token-1234567890", "change-me"),
            &production,
        ));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("admin.token: is a placeholder")),
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
        assert!(MINIMAL.contains("[\"k1\"]"));
    }
}
