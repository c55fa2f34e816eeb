//! The ACL file (`aclfile`): `user <name> <rules>` lines. Loading is all-or-nothing, as
//! Redis's ACLLoadFromFile: every error is collected with its file and line, and the users
//! change only if there was none. Saving writes the lines `ACL LIST` shows.

use crate::selector::has_spaces;
use crate::user::{merge_selector_args, User};
use crate::{default_user, Acl, RuleError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why an ACL file was refused: Redis's texts, each naming the file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError(pub String);

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Acl {
    /// Replaces every user with those of an ACL file's text (`path` names it in errors).
    /// A file without `default` gets Redis's default user (everything, no password).
    pub fn load_file(&mut self, path: &str, text: &str) -> Result<(), FileError> {
        let mut users: BTreeMap<String, Arc<User>> = BTreeMap::new();
        let mut errors = String::new();
        for (i, line) in text.split('\n').enumerate() {
            let line_no = i + 1;
            let line = line.trim_matches([' ', '\t', '\r', '\n']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Split at every single space, quotes meaning nothing, as Redis's loader does
            // (and as ACL SAVE writes: rules are never quoted). A quote is valid in a key
            // or channel pattern, so quote-aware splitting would refuse to load back a
            // file ACL SAVE wrote; two spaces make an empty rule, which does nothing.
            let words: Vec<String> = line.split(' ').map(str::to_string).collect();
            if words[0] != "user" || words.len() < 2 {
                errors.push_str(&format!("{path}:{line_no} should start with user keyword followed by the username. "));
                continue;
            }
            let name = &words[1];
            if has_spaces(name) {
                errors.push_str(&format!("'{path}:{line_no}: username '{name}' contains invalid characters. "));
                continue;
            }
            if users.contains_key(name) {
                errors.push_str(&format!("{path}:{line_no}: duplicate user '{name}' found. "));
                continue;
            }
            let Ok(rules) = merge_selector_args(&words[2..]) else {
                errors.push_str(&format!("{path}:{line_no}: Unmatched parenthesis in selector definition. "));
                continue;
            };
            let mut u = User::new(&self.table);
            // Unknown names are safe to echo and all reported; other errors only the
            // first of a line (later ones may follow from it), as Redis reports them.
            let mut reported_other = false;
            for r in &rules {
                match u.apply(&self.table, r) {
                    Ok(()) => {}
                    Err(RuleError::UnknownName) => errors.push_str(&format!(
                        "{path}:{line_no}: Error in applying operation '{r}': {}. ",
                        RuleError::UnknownName.message()
                    )),
                    Err(e) if !reported_other => {
                        reported_other = true;
                        errors.push_str(&format!("{path}:{line_no}: {}. ", e.message()));
                    }
                    Err(_) => {}
                }
            }
            users.insert(name.clone(), Arc::new(u));
        }
        if !errors.is_empty() {
            errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
            return Err(FileError(errors));
        }
        users.entry("default".into()).or_insert_with(|| Arc::new(default_user(&self.table)));
        self.users = users;
        self.changed();
        Ok(())
    }

    /// The ACL file's text for ACL SAVE.
    pub fn file_text(&self) -> String {
        self.config_lines().iter().map(|l| format!("{l}\n")).collect()
    }
}
