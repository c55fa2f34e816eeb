//! `ferrokv docker-entrypoint`: the container image's entrypoint. The image is `FROM
//! scratch`; its only shell is a busybox for operators (`docker exec -it … /bin/sh`), so what
//! the official and bitnami images do in shell scripts is done here, tested like the rest:
//!
//! - [`dispatch`] reads the arguments with the official image's rules (`-flags` or a
//!   `*.conf` run the server, `ferrokv-cli …`/`redis-sentinel …` run that program);
//! - [`env`] reads the REDIS_* variables and their `*_FILE` variants;
//! - [`server_env`] and [`sentinel_env`] translate them into redis.conf / sentinel.conf
//!   text, with bitnami's names, defaults and validations (errors name the variable);
//! - [`plain`] holds the image's defaults for argument-configured processes (protected
//!   mode off, a read-only sentinel.conf copied to the data volume);
//! - [`health`] is the HEALTHCHECK (the port and password the process was started with);
//! - [`launch`] is the only part with side effects: files, asking a sentinel, bounded waits.
//!
//! Everything but `launch` and `probe` is pure and unit-tested; the binary runs what
//! [`prepare`] returns in the same process, so the server stays PID 1 and gets
//! `docker stop`'s SIGTERM.

pub mod conf_text;
pub mod dispatch;
pub mod env;
pub mod health;
mod launch;
pub mod plain;
mod probe;
pub mod sentinel_env;
pub mod server_env;

pub use launch::{prepare, Launch};
