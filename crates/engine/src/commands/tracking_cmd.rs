//! CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR, CLIENT TRACKINGINFO: client-side
//! caching's commands, with Redis 7.0.15's checks in its order and its error texts.

use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use crate::tracking::{Tracking, TrackingOptions};

/// CLIENT TRACKING on|off [REDIRECT id] [PREFIX p]… [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn tracking(c: &mut Ctx) -> CmdResult {
    let mut opts = TrackingOptions::default();
    let mut j = 3;
    while j < c.argc() {
        let more = j + 1 < c.argc();
        let a = c.arg(j);
        if is(a, "redirect") && more {
            j += 1;
            if opts.redirect != 0 {
                return fail("ERR A client can only redirect to a single other client");
            }
            let id = int_arg(c.arg(j))?;
            let exists = id > 0 && (id as u64 == c.client.id || c.eng.clients.get(id as u64).is_some());
            if !exists {
                return fail("ERR The client ID you want redirect to does not exist");
            }
            opts.redirect = id as u64;
        } else if is(a, "bcast") {
            opts.bcast = true;
        } else if is(a, "optin") {
            opts.optin = true;
        } else if is(a, "optout") {
            opts.optout = true;
        } else if is(a, "noloop") {
            opts.noloop = true;
        } else if is(a, "prefix") && more {
            j += 1;
            opts.prefixes.push(c.arg(j).to_vec());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let id = c.client.id;
    if is(c.arg(2), "on") {
        let t = &c.client.tracking;
        if !opts.bcast && !opts.prefixes.is_empty() {
            return fail("ERR PREFIX option requires BCAST mode to be enabled");
        }
        if t.on && t.bcast != opts.bcast {
            return fail("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if opts.bcast && (opts.optin || opts.optout) {
            return fail("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if opts.optin && opts.optout {
            return fail("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if (opts.optin && t.optout) || (opts.optout && t.optin) {
            return fail("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if opts.bcast {
            if let Some((msg, goes_on)) = Tracking::prefix_collision(&t.prefixes, &opts.prefixes) {
                c.out().error(&msg);
                if !goes_on {
                    return Ok(());
                }
            }
        }
        c.eng.tracking.enable(&mut c.client.tracking, id, &opts);
        // From now on this client's own invalidations wait for its replies.
        c.eng.tracking.current = id;
        c.eng.tracking.processing = id;
        c.eng.tracking.refresh();
    } else if is(c.arg(2), "off") {
        c.eng.tracking_disable(c.client);
    } else {
        return Err(CmdError::Syntax);
    }
    c.out().ok();
    Ok(())
}

/// CLIENT CACHING yes|no: OPTIN/OPTOUT's exception for the next command.
pub fn caching(c: &mut Ctx) -> CmdResult {
    let opt = c.arg(2);
    let t = &mut c.client.tracking;
    if !t.on {
        return fail("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    }
    if is(opt, "yes") {
        if !t.optin {
            return fail("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        }
    } else if is(opt, "no") {
        if !t.optout {
            return fail("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        }
    } else {
        return Err(CmdError::Syntax);
    }
    t.caching = true;
    c.out().ok();
    Ok(())
}

/// CLIENT GETREDIR: the redirect client's id, 0 without one, -1 when not tracking.
pub fn getredir(c: &mut Ctx) -> CmdResult {
    let t = &c.client.tracking;
    let v = if t.on { t.redirect as i64 } else { -1 };
    c.out().int(v);
    Ok(())
}

/// CLIENT TRACKINGINFO: flags (a set), redirect, prefixes.
pub fn trackinginfo(c: &mut Ctx) -> CmdResult {
    let t = c.client.tracking.clone();
    let mut names: Vec<&str> = vec![if t.on { "on" } else { "off" }];
    if t.bcast {
        names.push("bcast");
    }
    if t.optin {
        names.push("optin");
        if t.caching {
            names.push("caching-yes");
        }
    }
    if t.optout {
        names.push("optout");
        if t.caching {
            names.push("caching-no");
        }
    }
    if t.noloop {
        names.push("noloop");
    }
    if t.broken_redirect {
        names.push("broken_redirect");
    }
    let out = c.out();
    out.map(3);
    out.bulk(b"flags");
    out.set(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(if t.on { t.redirect as i64 } else { -1 });
    out.bulk(b"prefixes");
    out.array(t.prefixes.len());
    for p in &t.prefixes {
        out.bulk(p);
    }
    Ok(())
}
