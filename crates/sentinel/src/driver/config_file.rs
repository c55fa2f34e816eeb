//! The sentinel's config file: the refusal to start without a writable one (Sentinel
//! stores its state there, so running without would forget failovers on restart), and
//! saving state into it with an atomic rewrite (temp file, fsync, rename, fsync dir).

use crate::acl::Acl;
use crate::persist::{owned_lines, OWNED_KEYS};
use crate::sentinel::Persist;
use ferrokv_config::rewrite::{rewritten_content_with, OwnedLine};
use ferrokv_config::{pid, Config};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn access_error(path: &Path, mode: libc::c_int) -> Option<String> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: access() only reads the NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), mode) } == 0 {
        return None;
    }
    let e = std::io::Error::last_os_error();
    // strerror's text, without Rust's "(os error N)" suffix, as Redis prints it.
    let text = e.to_string();
    Some(text.split(" (os error").next().unwrap_or(&text).to_string())
}

/// Redis's startup check, extended to the directory: the rewrite creates a temporary file
/// next to the config and renames it over, which needs a writable directory too.
pub fn check_writable(path: &Path) -> Result<(), String> {
    if let Some(e) = access_error(path, libc::W_OK) {
        return Err(format!("Sentinel config file {} is not writable: {e}. Exiting...", path.display()));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Some(e) = access_error(dir, libc::W_OK | libc::X_OK) {
        return Err(format!(
            "Sentinel config file {} is not writable: its directory {} is not writable ({e}). Exiting...",
            path.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// Saves the state into the config file with Redis's rewrite: the directives (the port,
/// which may have come from the command line, the working directory…), the ACL users
/// and the `sentinel` lines each where the file had them, what it lacked appended after
/// the signature, comments and unknown lines untouched.
pub struct FilePersist {
    pub path: PathBuf,
    pub cfg: Config,
    pub acl: Arc<Mutex<Acl>>,
}

impl Persist for FilePersist {
    fn save(&mut self, lines: &[String]) -> Result<(), String> {
        let old = match std::fs::read_to_string(&self.path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.to_string()),
        };
        // Redis rewrites the users (by name) before the sentinel state; with an `aclfile`
        // they live there (ACL SAVE), and `user` lines are dropped from the config file.
        let users = if self.cfg.str(pid("aclfile")).is_empty() { self.acl.lock().config_lines() } else { Vec::new() };
        let mut owned: Vec<OwnedLine> =
            users.into_iter().map(|line| OwnedLine { key: "user".into(), line, force: true }).collect();
        owned.extend(owned_lines(lines));
        let keys: Vec<&str> = std::iter::once("user").chain(OWNED_KEYS.iter().copied()).collect();
        let new = rewritten_content_with(&self.cfg, &old, &owned, &keys);
        if new == old {
            return Ok(());
        }
        ferrokv_config::rewrite::write_atomically(&self.path, new.as_bytes()).map_err(|e| e.to_string())
    }
}
