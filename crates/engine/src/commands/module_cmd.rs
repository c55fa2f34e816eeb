//! MODULE: ferrokv loads no Redis modules (they are shared objects written against Redis's
//! C internals). MODULE LIST answers an empty list, so tools that probe for modules carry on;
//! LOAD and LOADEX fail the way a module that cannot load fails in Redis, with the reason in
//! the log; UNLOAD finds no module of that name.

use crate::ctx::{reply_help, Ctx};
use crate::error::{CmdError, CmdResult};

pub fn module_list(c: &mut Ctx) -> CmdResult {
    c.out().array(0);
    Ok(())
}

pub fn module_load(c: &mut Ctx) -> CmdResult {
    log::warn!("Module {} failed to load: ferrokv does not load Redis modules", String::from_utf8_lossy(c.arg(2)));
    Err(CmdError::err("ERR Error loading the extension. Please check the server logs."))
}

pub fn module_unload(_: &mut Ctx) -> CmdResult {
    Err(CmdError::err("ERR Error unloading module: no such module with that name"))
}

pub fn module_help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    )
}
