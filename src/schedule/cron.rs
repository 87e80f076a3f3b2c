//! Five-field cron expressions (minute hour day-of-month month day-of-week): parsing, matching a
//! local time (for the foreground `run-schedule`), turning `--at`/`--every` into one, and
//! writing one as systemd `OnCalendar=` lines.

use std::time::Duration;

use chrono::{Datelike, NaiveDateTime, Timelike};

const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// A parsed expression: the allowed values of each field.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    pub text: String,
    fields: [Vec<u32>; 5],
    /// Whether day-of-month / day-of-week were restricted (cron matches either when both are).
    dom_star: bool,
    dow_star: bool,
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "`{text}`: a cron expression has five fields (minute hour day-of-month month \
                 day-of-week), e.g. `30 3 * * *`"
            ));
        }
        let mut fields: [Vec<u32>; 5] = Default::default();
        for (i, part) in parts.iter().enumerate() {
            let (name, min, max) = FIELDS[i];
            let mut values = Vec::new();
            for item in part.split(',') {
                values.extend(
                    parse_item(item, min, max).map_err(|e| format!("`{text}`: {name}: {e}"))?,
                );
            }
            if i == 4 {
                // 7 is Sunday too.
                values = values.into_iter().map(|d| d % 7).collect();
            }
            values.sort_unstable();
            values.dedup();
            fields[i] = values;
        }
        Ok(Cron {
            text: parts.join(" "),
            fields,
            dom_star: parts[2] == "*",
            dow_star: parts[4] == "*",
        })
    }

    /// Every day at `HH:MM`.
    pub fn daily_at(hhmm: &str) -> Result<Cron, String> {
        let bad = || format!("--at {hhmm}: expected HH:MM (24-hour), e.g. 03:00");
        let (h, m) = hhmm.split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Cron::parse(&format!("{m} {h} * * *"))
    }

    /// At a regular interval that cron can express: minutes dividing an hour, hours dividing a
    /// day, or one day (at midnight).
    pub fn every(d: Duration) -> Result<Cron, String> {
        let secs = d.as_secs();
        let bad = || {
            format!(
                "--every {}: use minutes that divide an hour (5m, 15m, 30m), hours that divide a \
                 day (1h, 6h, 12h), or 1d; or give --cron",
                humantime::format_duration(d)
            )
        };
        if secs == 0 || secs % 60 != 0 || d.subsec_nanos() != 0 {
            return Err(bad());
        }
        let minutes = secs / 60;
        let expr = match minutes {
            1 => "* * * * *".to_string(),
            m if m < 60 && 60 % m == 0 => format!("*/{m} * * * *"),
            60 => "0 * * * *".to_string(),
            m if m % 60 == 0 && m < 1440 && 1440 % m == 0 => format!("0 */{} * * *", m / 60),
            1440 => "0 0 * * *".to_string(),
            _ => return Err(bad()),
        };
        Cron::parse(&expr)
    }

    /// Whether the minute of `t` (local time) is one this expression fires in.
    pub fn matches(&self, t: &NaiveDateTime) -> bool {
        let has = |i: usize, v: u32| self.fields[i].contains(&v);
        let dom = has(2, t.day());
        let dow = has(4, t.weekday().num_days_from_sunday());
        let day = match (self.dom_star, self.dow_star) {
            (false, false) => dom || dow,
            _ => dom && dow,
        };
        has(0, t.minute()) && has(1, t.hour()) && has(3, t.month()) && day
    }

    /// The same schedule as systemd `OnCalendar=` values (two when both day fields are
    /// restricted, since cron then fires on either).
    pub fn on_calendar(&self) -> Vec<String> {
        let list = |i: usize, star: bool| -> String {
            if star {
                "*".into()
            } else {
                self.fields[i]
                    .iter()
                    .map(|v| format!("{v:02}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        let full = |i: usize| self.fields[i].len() as u32 == FIELDS[i].2 - FIELDS[i].1 + 1;
        let minute = list(0, full(0));
        let hour = list(1, full(1));
        let month = list(3, full(3));
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        let dow = self.fields[4]
            .iter()
            .map(|&d| days[d as usize])
            .collect::<Vec<_>>()
            .join(",");
        let with = |dow: Option<&str>, dom: &str| match dow {
            Some(d) => format!("{d} *-{month}-{dom} {hour}:{minute}:00"),
            None => format!("*-{month}-{dom} {hour}:{minute}:00"),
        };
        match (self.dom_star, self.dow_star) {
            (true, true) => vec![with(None, "*")],
            (true, false) => vec![with(Some(&dow), "*")],
            (false, true) => vec![with(None, &list(2, false))],
            (false, false) => vec![with(None, &list(2, false)), with(Some(&dow), "*")],
        }
    }
}

fn parse_item(item: &str, min: u32, max: u32) -> Result<Vec<u32>, String> {
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => (
            r,
            s.parse::<u32>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or(format!("bad step `{s}`"))?,
        ),
        None => (item, 1),
    };
    let num = |s: &str| -> Result<u32, String> {
        let v: u32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
        if v < min || v > max {
            return Err(format!("{v} is outside {min}-{max}"));
        }
        Ok(v)
    };
    let (lo, hi) = match range {
        "*" => (min, max),
        r => match r.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            // `5/15` means from 5 to the end, every 15.
            None if item.contains('/') => (num(r)?, max),
            None => {
                let v = num(r)?;
                (v, v)
            }
        },
    };
    if lo > hi {
        return Err(format!("`{range}` is an empty range"));
    }
    Ok((lo..=hi).step_by(step as usize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn at_and_every() {
        assert_eq!(Cron::daily_at("03:00").unwrap().text, "0 3 * * *");
        assert_eq!(Cron::daily_at("23:59").unwrap().text, "59 23 * * *");
        assert!(Cron::daily_at("24:00").is_err());
        assert!(Cron::daily_at("3").is_err());
        let every = |s: &str| Cron::every(humantime::parse_duration(s).unwrap());
        assert_eq!(every("15m").unwrap().text, "*/15 * * * *");
        assert_eq!(every("1m").unwrap().text, "* * * * *");
        assert_eq!(every("1h").unwrap().text, "0 * * * *");
        assert_eq!(every("6h").unwrap().text, "0 */6 * * *");
        assert_eq!(every("1d").unwrap().text, "0 0 * * *");
        assert!(every("7m").is_err());
        assert!(every("5h").is_err());
        assert!(every("90s").is_err());
    }

    #[test]
    fn matching() {
        let c = Cron::parse("*/15 3 * * *").unwrap();
        assert!(c.matches(&at(2026, 11, 25, 3, 45)));
        assert!(!c.matches(&at(2026, 11, 25, 3, 46)));
        assert!(!c.matches(&at(2026, 11, 25, 4, 0)));
        // 2026-11-25 is a Wednesday (3); day fields restricted together match either.
        let c = Cron::parse("0 0 1 * 3").unwrap();
        assert!(c.matches(&at(2026, 11, 25, 0, 0)));
        assert!(c.matches(&at(2026, 12, 1, 0, 0)));
        assert!(!c.matches(&at(2026, 11, 26, 0, 0)));
        // Only day-of-week restricted: every Sunday (0 or 7).
        let c = Cron::parse("30 2 * * 7").unwrap();
        assert!(c.matches(&at(2026, 11, 29, 2, 30)));
        assert!(!c.matches(&at(2026, 11, 30, 2, 30)));
        let c = Cron::parse("0 9-17/4 * 1,6 1-5").unwrap();
        assert!(c.matches(&at(2026, 6, 1, 13, 0)));
        assert!(!c.matches(&at(2026, 6, 1, 15, 0)));
    }

    #[test]
    fn bad_expressions() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn systemd_calendar() {
        assert_eq!(
            Cron::parse("0 3 * * *").unwrap().on_calendar(),
            ["*-*-* 03:00:00"]
        );
        assert_eq!(
            Cron::parse("*/20 * * * *").unwrap().on_calendar(),
            ["*-*-* *:00,20,40:00"]
        );
        assert_eq!(
            Cron::parse("30 2 * * 0,6").unwrap().on_calendar(),
            ["Sun,Sat *-*-* 02:30:00"]
        );
        assert_eq!(
            Cron::parse("0 0 1 * 1").unwrap().on_calendar(),
            ["*-*-01 00:00:00", "Mon *-*-* 00:00:00"]
        );
    }
}
