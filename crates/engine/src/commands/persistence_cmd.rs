//! SAVE, BGSAVE, BGREWRITEAOF: the persistence commands (the work is in
//! `crate::persistence`).

use crate::ctx::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::persistence::Started;

pub fn save(c: &mut Ctx) -> CmdResult {
    match c.eng.save_sync(c.now) {
        Ok(()) => {
            c.out().ok();
            Ok(())
        }
        Err(e) => Err(CmdError::msg(e)),
    }
}

pub fn bgsave(c: &mut Ctx) -> CmdResult {
    let schedule = match c.argc() {
        1 => false,
        2 if is(c.arg(1), "SCHEDULE") => true,
        _ => return Err(CmdError::Syntax),
    };
    match c.eng.bgsave(c.now, schedule) {
        Ok(Started::Now) => c.out().simple("Background saving started"),
        Ok(Started::Scheduled) => c.out().simple("Background saving scheduled"),
        Err(e) => return Err(CmdError::msg(e)),
    }
    Ok(())
}

pub fn bgrewriteaof(c: &mut Ctx) -> CmdResult {
    match c.eng.bgrewriteaof(c.now) {
        Ok(Started::Now) => c.out().simple("Background append only file rewriting started"),
        Ok(Started::Scheduled) => c.out().simple("Background append only file rewriting scheduled"),
        Err(e) => return Err(CmdError::msg(e)),
    }
    Ok(())
}
