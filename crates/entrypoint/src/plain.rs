//! The image's defaults for a server or sentinel started from arguments or a config file
//! (no REDIS_* variables): pure decisions, the caller reads and copies the files.

/// The official image turns protected mode off (a container is reached from other
/// containers, never from loopback). A config file or flag that sets it keeps its value.
pub fn with_protected_mode_default(args: &[String], conf_text: Option<&str>) -> Vec<String> {
    let in_args = args.iter().any(|a| a.eq_ignore_ascii_case("--protected-mode"));
    let in_conf = conf_text.is_some_and(|t| {
        t.lines().any(|l| l.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case("protected-mode")))
    });
    if in_args || in_conf {
        return args.to_vec();
    }
    let mut out = Vec::with_capacity(args.len() + 2);
    match args.first() {
        // The config file must stay first.
        Some(conf) if !conf.starts_with('-') => {
            out.push(conf.clone());
            out.extend(["--protected-mode".to_string(), "no".to_string()]);
            out.extend(args[1..].iter().cloned());
        }
        _ => {
            out.extend(["--protected-mode".to_string(), "no".to_string()]);
            out.extend(args.iter().cloned());
        }
    }
    out
}

/// Where a sentinel given `conf` runs from. Sentinel rewrites its config file with what
/// it learns, so a read-only (mounted) file is copied to the data volume first, as
/// bitnami does; a copy already there is the state of a previous run and is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SentinelConf {
    /// The file is writable where it is.
    InPlace,
    /// Copy it to this path, then run from there.
    CopyTo(String),
    /// A previous run's copy exists at this path: run from it.
    Persisted(String),
}

pub fn sentinel_conf(conf: &str, writable: bool, data_copy: &str, data_copy_exists: bool) -> SentinelConf {
    if conf == data_copy || (writable && !data_copy_exists) {
        SentinelConf::InPlace
    } else if data_copy_exists {
        SentinelConf::Persisted(data_copy.to_string())
    } else {
        SentinelConf::CopyTo(data_copy.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn protected_mode_off_unless_configured() {
        assert_eq!(with_protected_mode_default(&[], None), v(&["--protected-mode", "no"]));
        assert_eq!(
            with_protected_mode_default(&v(&["--port", "1"]), None),
            v(&["--protected-mode", "no", "--port", "1"])
        );
        assert_eq!(
            with_protected_mode_default(&v(&["/r.conf", "--port", "1"]), Some("port 2\n")),
            v(&["/r.conf", "--protected-mode", "no", "--port", "1"])
        );
        assert_eq!(with_protected_mode_default(&v(&["/r.conf"]), Some("# x\n  protected-mode yes\n")), v(&["/r.conf"]));
        assert_eq!(
            with_protected_mode_default(&v(&["--protected-mode", "yes"]), None),
            v(&["--protected-mode", "yes"])
        );
    }

    #[test]
    fn sentinel_config_location() {
        assert_eq!(sentinel_conf("/data/sentinel.conf", true, "/data/sentinel.conf", true), SentinelConf::InPlace);
        assert_eq!(sentinel_conf("/etc/s.conf", true, "/data/sentinel.conf", false), SentinelConf::InPlace);
        assert_eq!(
            sentinel_conf("/etc/s.conf", false, "/data/sentinel.conf", false),
            SentinelConf::CopyTo("/data/sentinel.conf".into())
        );
        assert_eq!(
            sentinel_conf("/etc/s.conf", false, "/data/sentinel.conf", true),
            SentinelConf::Persisted("/data/sentinel.conf".into())
        );
        // A writable file elsewhere still loses to the state saved by an earlier run.
        assert_eq!(
            sentinel_conf("/etc/s.conf", true, "/data/sentinel.conf", true),
            SentinelConf::Persisted("/data/sentinel.conf".into())
        );
    }
}
