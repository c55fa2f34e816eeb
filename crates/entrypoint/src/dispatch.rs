//! What the container was asked to run, from its arguments, following the official redis
//! image: arguments that start with `-` or a `*.conf` path are the server's; a program
//! name (`ferrokv-cli …`, `redis-sentinel …`) runs that program. With no arguments, the
//! REDIS_* variables decide: any of them set means a bitnami-style configuration,
//! none means a plain server (as `docker run redis` gives).

/// The decision, before any file is read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A server configured from REDIS_* variables; `args` are extra server flags.
    EnvServer { args: Vec<String> },
    /// A sentinel configured from REDIS_* variables; `args` are extra flags.
    EnvSentinel { args: Vec<String> },
    /// redis-server arguments (`[redis.conf] [--directive value ...]`).
    Server { args: Vec<String> },
    /// A question the server answers before reading any configuration (`--version`,
    /// `--help`): its arguments go to it untouched, with no image default or generated
    /// config in front of them, as the official image passes them to redis-server.
    ServerQuery { args: Vec<String> },
    /// redis-sentinel arguments (`sentinel.conf [--directive value ...]`).
    Sentinel { args: Vec<String> },
    /// redis-cli arguments.
    Cli { args: Vec<String> },
    /// `healthcheck`: the image's HEALTHCHECK.
    Healthcheck,
    /// Any other program, run as is (`docker run ferrokv ferrokv --version`).
    Exec { program: String, args: Vec<String> },
}

fn program_name(arg: &str) -> &str {
    arg.rsplit('/').next().unwrap_or(arg)
}

/// The options redis-server handles when they come first, before it reads a config.
const QUERY_OPTIONS: [&str; 6] = ["-v", "--version", "-h", "--help", "--test-memory", "--check-system"];

fn is_query(args: &[String]) -> bool {
    args.first().is_some_and(|a| QUERY_OPTIONS.contains(&a.as_str()))
}

/// A server command line that asks for sentinel mode is a sentinel's.
fn server_or_sentinel(args: Vec<String>) -> Command {
    if is_query(&args) {
        Command::ServerQuery { args }
    } else if args.iter().any(|a| a == "--sentinel") {
        Command::Sentinel { args: args.into_iter().filter(|a| a != "--sentinel").collect() }
    } else {
        Command::Server { args }
    }
}

/// Decides from the arguments (after `docker-entrypoint`) and whether any REDIS_* variable
/// of the server role is set.
pub fn dispatch(args: &[String], env_configured: bool) -> Command {
    let rest = || args.get(1..).unwrap_or_default().to_vec();
    let Some(first) = args.first() else {
        return if env_configured {
            Command::EnvServer { args: Vec::new() }
        } else {
            Command::Server { args: Vec::new() }
        };
    };
    if is_query(args) {
        return Command::ServerQuery { args: args.to_vec() };
    }
    if first.starts_with('-') {
        // Flags only: on top of the variables' configuration if there is one, like
        // bitnami's run.sh passes its arguments to redis-server.
        return if env_configured {
            Command::EnvServer { args: args.to_vec() }
        } else {
            server_or_sentinel(args.to_vec())
        };
    }
    if first.ends_with(".conf") {
        return server_or_sentinel(args.to_vec());
    }
    match (first.as_str(), program_name(first)) {
        ("server", _) => {
            if env_configured && !is_query(&rest()) {
                Command::EnvServer { args: rest() }
            } else {
                server_or_sentinel(rest())
            }
        }
        // `sentinel` alone (or with flags) is the bitnami-style sentinel; with a config
        // file it runs that file.
        ("sentinel", _) => match args.get(1) {
            Some(conf) if !conf.starts_with('-') => Command::Sentinel { args: rest() },
            _ => Command::EnvSentinel { args: rest() },
        },
        ("cli", _) => Command::Cli { args: rest() },
        ("healthcheck", _) => Command::Healthcheck,
        (_, "ferrokv-server" | "redis-server") => server_or_sentinel(rest()),
        (_, "ferrokv-sentinel" | "redis-sentinel") => Command::Sentinel { args: rest() },
        (_, "ferrokv-cli" | "redis-cli") => Command::Cli { args: rest() },
        _ => Command::Exec { program: first.clone(), args: rest() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(args: &[&str], env: bool) -> Command {
        dispatch(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), env)
    }

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_arguments() {
        assert_eq!(d(&[], false), Command::Server { args: vec![] });
        assert_eq!(d(&[], true), Command::EnvServer { args: vec![] });
    }

    #[test]
    fn official_image_rules() {
        assert_eq!(d(&["--port", "7000"], false), Command::Server { args: v(&["--port", "7000"]) });
        assert_eq!(
            d(&["/usr/local/etc/ferrokv/redis.conf"], false),
            Command::Server { args: v(&["/usr/local/etc/ferrokv/redis.conf"]) }
        );
        // A config file wins over the variables: it says everything.
        assert_eq!(
            d(&["/etc/r.conf", "--port", "1"], true),
            Command::Server { args: v(&["/etc/r.conf", "--port", "1"]) }
        );
        assert_eq!(
            d(&["/etc/sentinel.conf", "--sentinel"], false),
            Command::Sentinel { args: v(&["/etc/sentinel.conf"]) }
        );
        assert_eq!(
            d(&["redis-server", "/c.conf", "--sentinel", "--port", "1"], false),
            Command::Sentinel { args: v(&["/c.conf", "--port", "1"]) }
        );
        assert_eq!(d(&["ferrokv-server", "--port", "9993"], true), Command::Server { args: v(&["--port", "9993"]) });
        assert_eq!(
            d(&["/usr/local/bin/redis-sentinel", "/s.conf"], false),
            Command::Sentinel { args: v(&["/s.conf"]) }
        );
        assert_eq!(d(&["ferrokv-cli", "-p", "9993", "ping"], false), Command::Cli { args: v(&["-p", "9993", "ping"]) });
        assert_eq!(d(&["redis-cli"], true), Command::Cli { args: vec![] });
        assert_eq!(
            d(&["ferrokv", "--version"], false),
            Command::Exec { program: "ferrokv".into(), args: v(&["--version"]) }
        );
    }

    #[test]
    fn help_and_version_reach_the_server_untouched() {
        for env in [false, true] {
            for flag in ["--help", "-h", "--version", "-v"] {
                let want = Command::ServerQuery { args: v(&[flag]) };
                assert_eq!(d(&[flag], env), want);
                assert_eq!(d(&["redis-server", flag], env), want);
                assert_eq!(d(&["/usr/local/bin/ferrokv-server", flag], env), want);
                assert_eq!(d(&["server", flag], env), want);
            }
            assert_eq!(d(&["--test-memory", "64"], env), Command::ServerQuery { args: v(&["--test-memory", "64"]) });
        }
        // Only first: later, `--help` is a directive like any other (and refused by the server).
        assert_eq!(d(&["--port", "1", "--help"], false), Command::Server { args: v(&["--port", "1", "--help"]) });
        // The sentinel and the client answer their own.
        assert_eq!(d(&["redis-sentinel", "--version"], false), Command::Sentinel { args: v(&["--version"]) });
        assert_eq!(d(&["redis-cli", "--help"], true), Command::Cli { args: v(&["--help"]) });
    }

    #[test]
    fn flags_on_top_of_variables() {
        assert_eq!(d(&["--loglevel", "verbose"], true), Command::EnvServer { args: v(&["--loglevel", "verbose"]) });
    }

    #[test]
    fn role_words() {
        assert_eq!(d(&["server"], true), Command::EnvServer { args: vec![] });
        assert_eq!(d(&["server", "--port", "1"], false), Command::Server { args: v(&["--port", "1"]) });
        assert_eq!(d(&["sentinel"], false), Command::EnvSentinel { args: vec![] });
        assert_eq!(
            d(&["sentinel", "--loglevel", "debug"], true),
            Command::EnvSentinel { args: v(&["--loglevel", "debug"]) }
        );
        assert_eq!(d(&["sentinel", "/etc/s.conf"], true), Command::Sentinel { args: v(&["/etc/s.conf"]) });
        assert_eq!(d(&["cli", "ping"], false), Command::Cli { args: v(&["ping"]) });
        assert_eq!(d(&["healthcheck"], true), Command::Healthcheck);
    }
}
