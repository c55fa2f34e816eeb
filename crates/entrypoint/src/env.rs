//! The environment as the entrypoint reads it. Every variable it knows may instead be given
//! as `<NAME>_FILE`, a path whose content is the value (Docker and Kubernetes secrets), as
//! bitnami's images allow. Files are read once, here, so the translation that follows is a
//! pure function of an [`Env`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A problem with one variable; the message names it so the fix is obvious from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    pub var: String,
    pub msg: String,
}

impl EnvError {
    pub fn new(var: &str, msg: impl Into<String>) -> EnvError {
        EnvError { var: var.to_string(), msg: msg.into() }
    }
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.msg)
    }
}

/// Variables of the server role (bitnami/redis).
pub const SERVER_VARS: &[&str] = &[
    "ALLOW_EMPTY_PASSWORD",
    "REDIS_ACLFILE",
    "REDIS_ALLOW_REMOTE_CONNECTIONS",
    "REDIS_AOF_ENABLED",
    "REDIS_DATA_DIR",
    "REDIS_DISABLE_COMMANDS",
    "REDIS_EXTRA_FLAGS",
    "REDIS_IO_THREADS",
    "REDIS_IO_THREADS_DO_READS",
    "REDIS_MASTER_HOST",
    "REDIS_MASTER_PASSWORD",
    "REDIS_MASTER_PORT_NUMBER",
    "REDIS_OVERRIDES_FILE",
    "REDIS_PASSWORD",
    "REDIS_PORT_NUMBER",
    "REDIS_RDB_POLICY",
    "REDIS_RDB_POLICY_DISABLED",
    "REDIS_REPLICATION_MODE",
    "REDIS_REPLICA_IP",
    "REDIS_REPLICA_PORT",
    "REDIS_SENTINEL_HOST",
    "REDIS_SENTINEL_MASTER_NAME",
    "REDIS_SENTINEL_PORT_NUMBER",
    "REDIS_TLS_AUTH_CLIENTS",
    "REDIS_TLS_CA_DIR",
    "REDIS_TLS_CA_FILE",
    "REDIS_TLS_CERT_FILE",
    "REDIS_TLS_DH_PARAMS_FILE",
    "REDIS_TLS_ENABLED",
    "REDIS_TLS_KEY_FILE",
    "REDIS_TLS_KEY_FILE_PASS",
    "REDIS_TLS_PORT",
    "REDIS_TLS_PORT_NUMBER",
];

/// Variables of the sentinel role (bitnami/redis-sentinel).
pub const SENTINEL_VARS: &[&str] = &[
    "REDIS_DATA_DIR",
    "REDIS_MASTER_HOST",
    "REDIS_MASTER_PASSWORD",
    "REDIS_MASTER_PORT_NUMBER",
    "REDIS_MASTER_SET",
    "REDIS_MASTER_USER",
    "REDIS_SENTINEL_ANNOUNCE_HOSTNAMES",
    "REDIS_SENTINEL_ANNOUNCE_IP",
    "REDIS_SENTINEL_ANNOUNCE_PORT",
    "REDIS_SENTINEL_DOWN_AFTER_MILLISECONDS",
    "REDIS_SENTINEL_FAILOVER_TIMEOUT",
    "REDIS_SENTINEL_MASTER_REBOOT_DOWN_AFTER_PERIOD",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_SENTINEL_PORT_NUMBER",
    "REDIS_SENTINEL_QUORUM",
    "REDIS_SENTINEL_RESOLVE_HOSTNAMES",
    "REDIS_SENTINEL_TLS_AUTH_CLIENTS",
    "REDIS_SENTINEL_TLS_CA_DIR",
    "REDIS_SENTINEL_TLS_CA_FILE",
    "REDIS_SENTINEL_TLS_CERT_FILE",
    "REDIS_SENTINEL_TLS_DH_PARAMS_FILE",
    "REDIS_SENTINEL_TLS_ENABLED",
    "REDIS_SENTINEL_TLS_KEY_FILE",
    "REDIS_SENTINEL_TLS_KEY_FILE_PASS",
    "REDIS_SENTINEL_TLS_PORT_NUMBER",
];

/// The variables the entrypoint knows, with their `*_FILE` variants resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Builds the environment from raw `(name, value)` pairs, reading `<NAME>_FILE` through
    /// `read` for every name in `known`. A file's trailing newlines are dropped (secrets are
    /// usually written by editors or `echo`), as the shell's `$(< file)` does.
    pub fn resolve<I>(
        raw: I,
        known: &[&str],
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Env, Vec<EnvError>>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let raw: BTreeMap<String, String> = raw.into_iter().collect();
        let mut vars = BTreeMap::new();
        let mut errors = Vec::new();
        for &name in known {
            let file_var = format!("{name}_FILE");
            match (raw.get(name), raw.get(&file_var).filter(|p| !p.is_empty())) {
                (Some(v), Some(_)) if !v.is_empty() => {
                    errors.push(EnvError::new(name, format!("set both directly and through {file_var}; keep one")))
                }
                (_, Some(path)) => match read(Path::new(path)) {
                    Ok(text) => {
                        vars.insert(name.to_string(), text.trim_end_matches(['\n', '\r']).to_string());
                    }
                    Err(e) => errors.push(EnvError::new(&file_var, format!("cannot read '{path}': {e}"))),
                },
                (Some(v), None) => {
                    vars.insert(name.to_string(), v.clone());
                }
                (None, None) => {}
            }
        }
        if errors.is_empty() {
            Ok(Env { vars })
        } else {
            Err(errors)
        }
    }

    /// An environment from literal pairs (tests, and callers that read no files).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env { vars: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    /// The value, with an empty value meaning unset (as in the shell scripts this mimics).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    pub fn is_empty(&self) -> bool {
        self.vars.values().all(|v| v.is_empty())
    }

    /// A yes/no variable. bitnami accepts yes/true/1 as yes; anything that is not clearly
    /// yes or no is refused here instead of silently meaning "no".
    pub fn flag(&self, name: &str, default: bool, errors: &mut Vec<EnvError>) -> bool {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("yes" | "true" | "1") => true,
            Some("no" | "false" | "0") => false,
            Some(other) => {
                errors.push(EnvError::new(name, format!("expected yes or no, got '{other}'")));
                default
            }
        }
    }

    /// A TCP port (1-65535).
    pub fn port(&self, name: &str, default: u16, errors: &mut Vec<EnvError>) -> u16 {
        match self.get(name) {
            None => default,
            Some(v) => match v.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    errors.push(EnvError::new(name, format!("'{v}' is not a port number (1-65535)")));
                    default
                }
            },
        }
    }

    /// A positive integer (quorums, timeouts in milliseconds).
    pub fn positive(&self, name: &str, default: u64, errors: &mut Vec<EnvError>) -> u64 {
        self.int(name, default, 1, errors)
    }

    /// An integer no smaller than `min`.
    pub fn int(&self, name: &str, default: u64, min: u64, errors: &mut Vec<EnvError>) -> u64 {
        match self.get(name) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= min => n,
                _ => {
                    let what = if min == 0 { "a non-negative integer" } else { "a positive integer" };
                    errors.push(EnvError::new(name, format!("'{v}' is not {what}")));
                    default
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn files(path: &Path) -> io::Result<String> {
        match path.to_str() {
            Some("/run/secrets/pw") => Ok("s3cret\n".into()),
            Some("/run/secrets/crlf") => Ok("abc\r\n\n".into()),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "No such file or directory")),
        }
    }

    #[test]
    fn file_variants_read_the_file_and_drop_trailing_newlines() {
        let env = Env::resolve(
            pairs(&[("REDIS_PASSWORD_FILE", "/run/secrets/pw"), ("REDIS_MASTER_PASSWORD_FILE", "/run/secrets/crlf")]),
            SERVER_VARS,
            &files,
        )
        .expect("resolves");
        assert_eq!(env.get("REDIS_PASSWORD"), Some("s3cret"));
        assert_eq!(env.get("REDIS_MASTER_PASSWORD"), Some("abc"));
    }

    #[test]
    fn unreadable_file_names_the_file_variable() {
        let err = Env::resolve(pairs(&[("REDIS_PASSWORD_FILE", "/nope")]), SERVER_VARS, &files).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].var, "REDIS_PASSWORD_FILE");
        assert!(err[0].to_string().contains("cannot read '/nope'"), "{}", err[0]);
    }

    #[test]
    fn value_and_file_together_is_an_error() {
        let err = Env::resolve(
            pairs(&[("REDIS_PASSWORD", "a"), ("REDIS_PASSWORD_FILE", "/run/secrets/pw")]),
            SERVER_VARS,
            &files,
        )
        .unwrap_err();
        assert_eq!(err[0].var, "REDIS_PASSWORD");
    }

    #[test]
    fn unknown_variables_are_ignored_and_empty_means_unset() {
        let env = Env::resolve(pairs(&[("HOME", "/root"), ("REDIS_PASSWORD", "")]), SERVER_VARS, &files).expect("ok");
        assert_eq!(env.get("HOME"), None);
        assert_eq!(env.get("REDIS_PASSWORD"), None);
        assert!(env.is_empty());
    }

    #[test]
    fn typed_getters_validate_and_name_the_variable() {
        let env = Env::from_pairs(&[("A", "YES"), ("B", "maybe"), ("P", "70000"), ("Q", "0"), ("N", "x")]);
        let mut errors = Vec::new();
        assert!(env.flag("A", false, &mut errors));
        assert!(!env.flag("B", false, &mut errors));
        assert_eq!(env.port("P", 6379, &mut errors), 6379);
        assert_eq!(env.positive("Q", 2, &mut errors), 2);
        assert_eq!(env.int("N", 0, 0, &mut errors), 0);
        let vars: Vec<&str> = errors.iter().map(|e| e.var.as_str()).collect();
        assert_eq!(vars, ["B", "P", "Q", "N"]);
        assert_eq!(env.port("missing", 26379, &mut errors), 26379);
    }
}
