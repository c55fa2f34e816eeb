//! Hello messages: how sentinels find each other and spread the newest master address.
//! Every sentinel publishes one on `__sentinel__:hello` of each master and replica (and
//! sends it straight to the other sentinels) every two seconds:
//!
//! ```text
//! <ip>,<port>,<runid>,<current_epoch>,<master_name>,<master_ip>,<master_port>,<master_config_epoch>
//! ```

pub const CHANNEL: &str = "__sentinel__:hello";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub ip: String,
    pub port: i64,
    pub runid: String,
    pub current_epoch: u64,
    pub master_name: String,
    pub master_ip: String,
    pub master_port: i64,
    pub master_config_epoch: u64,
}

/// `strtoull`-like: leading digits, 0 if none.
fn epoch(s: &str) -> u64 {
    s.bytes().take_while(u8::is_ascii_digit).fold(0u64, |n, b| n.saturating_mul(10).saturating_add((b - b'0') as u64))
}

impl Hello {
    pub fn format(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{}",
            self.ip,
            self.port,
            self.runid,
            self.current_epoch,
            self.master_name,
            self.master_ip,
            self.master_port,
            self.master_config_epoch
        )
    }

    /// Exactly eight comma-separated fields, or nothing: anything else on the channel is
    /// ignored, as Redis does.
    pub fn parse(text: &str) -> Option<Hello> {
        let t: Vec<&str> = text.split(',').collect();
        if t.len() != 8 {
            return None;
        }
        Some(Hello {
            ip: t[0].to_string(),
            port: crate::info::atoi(t[1]),
            runid: t[2].to_string(),
            current_epoch: epoch(t[3]),
            master_name: t[4].to_string(),
            master_ip: t[5].to_string(),
            master_port: crate::info::atoi(t[6]),
            master_config_epoch: epoch(t[7]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Hello {
            ip: "127.0.0.1".into(),
            port: 26379,
            runid: "a".repeat(40),
            current_epoch: 7,
            master_name: "mymaster".into(),
            master_ip: "127.0.0.1".into(),
            master_port: 6379,
            master_config_epoch: 3,
        };
        let text = h.format();
        assert_eq!(text, format!("127.0.0.1,26379,{},7,mymaster,127.0.0.1,6379,3", "a".repeat(40)));
        assert_eq!(Hello::parse(&text), Some(h));
        assert_eq!(Hello::parse("1,2,3"), None);
    }
}
