//! A user: flags, password hashes, root permissions and selectors (Redis's ACLSetUser).

use crate::selector::Selector;
use crate::table::Table;
use crate::RuleError;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (Some(true)) or `skip-sanitize-payload` (Some(false)).
    pub sanitize: Option<bool>,
    /// SHA-256 hashes, lowercase hex.
    pub passwords: Vec<String>,
    pub root: Selector,
    pub selectors: Vec<Selector>,
}

/// Redis's sha256 of a password, as lowercase hex.
pub fn hash_password(pass: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(pass).iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Equal hashes, in a time that does not depend on where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl User {
    pub fn new(t: &Table) -> User {
        User {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            root: Selector::new_like_config(t),
            selectors: Vec::new(),
        }
    }

    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// Whether `pass` is one of the passwords. Every stored hash is compared in full, so
    /// the time says nothing about which one (or how much of one) matched.
    pub fn password_matches(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let hash = hash_password(pass);
        self.passwords.iter().fold(false, |found, p| constant_time_eq(p.as_bytes(), hash.as_bytes()) | found)
    }

    /// One modifier (Redis's ACLSetUser).
    pub fn apply(&mut self, t: &Table, op: &str) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        match op.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.sanitize = Some(false),
            "sanitize-payload" => self.sanitize = Some(true),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.clear(),
            "reset" => {
                for op in ["resetpass", "resetkeys", "resetchannels"] {
                    self.apply(t, op)?;
                }
                if t.all_channels_default {
                    self.apply(t, "allchannels")?;
                }
                for op in ["off", "sanitize-payload", "clearselectors"] {
                    self.apply(t, op)?;
                }
                self.apply(t, "-@all")?;
            }
            _ if op.starts_with('>') || op.starts_with('#') => {
                let hash = hash_of(op)?;
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
            }
            _ if op.starts_with('<') || op.starts_with('!') => {
                let hash = hash_of(op)?;
                let at = self.passwords.iter().position(|p| *p == hash).ok_or(RuleError::NoSuchPassword)?;
                self.passwords.remove(at);
            }
            _ if op.len() >= 2 && op.starts_with('(') && op.ends_with(')') => {
                let mut s = Selector::new_like_config(t);
                let inner = &op[1..op.len() - 1];
                // Unbalanced quotes make an empty selector, not an error: Redis's
                // aclCreateSelectorFromOpSet applies no rule when sdssplitargs fails
                // (redis-server 7.0.15: ACL SETUSER u on '(~b" +get)' is OK, and ACL LIST
                // shows `(resetchannels -@all)`).
                let ops = ferrokv_resp::args::split_args(inner.as_bytes()).unwrap_or_default();
                for o in ops {
                    s.apply(t, &String::from_utf8_lossy(&o))?;
                }
                self.selectors.push(s);
            }
            _ => self.root.apply(t, op)?,
        }
        Ok(())
    }
}

/// The hash a `>pass`/`<pass` (hashed here) or `#hash`/`!hash` (checked) names.
fn hash_of(op: &str) -> Result<String, RuleError> {
    let rest = &op[1..];
    if op.starts_with('>') || op.starts_with('<') {
        Ok(hash_password(rest.as_bytes()))
    } else if valid_hash(rest) {
        Ok(rest.to_string())
    } else {
        Err(RuleError::BadHash)
    }
}

/// Groups of ACL rules in `ACL SETUSER` arguments: `(` … `)` spread over several
/// arguments become one selector. The index of an unclosed `(` on error.
pub(crate) fn merge_selector_args(args: &[String]) -> Result<Vec<String>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, a) in args.iter().enumerate() {
        if let Some((start, mut acc)) = open.take() {
            acc.push(' ');
            acc.push_str(a);
            if a.ends_with(')') {
                out.push(acc);
            } else {
                open = Some((start, acc));
            }
            continue;
        }
        if a.starts_with('(') && !a.ends_with(')') {
            open = Some((i, a.clone()));
            continue;
        }
        out.push(a.clone());
    }
    match open {
        Some((start, _)) => Err(start),
        None => Ok(out),
    }
}
