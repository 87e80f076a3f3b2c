//! Retention arithmetic, as restic's `forget` does it: backups newest first; `--keep-last N`
//! keeps the N newest; `--keep-hourly/daily/weekly/monthly/yearly N` keep the newest backup of
//! each of the last N hours/days/ISO weeks/months/years (local time) that have one, and when
//! fewer such periods exist the oldest backup is kept as well; `-1` means no limit;
//! `--keep-within D` keeps everything younger than D before the newest backup (not before
//! now, so a stopped schedule never empties a destination). Pure: no clock, no I/O.

use std::fmt;

use chrono::{DateTime, Datelike, Local, Months, TimeZone, Timelike, Utc};

/// A calendar duration, restic's `1y2m3d4h` (years, months, days, hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Within {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl Within {
    /// `7d`, `2y5m7d3h`, `36h`; also `2w` (14 days).
    pub fn parse(s: &str) -> Result<Within, String> {
        let mut w = Within::default();
        let mut digits = String::new();
        let bad = || format!("{s}: not a duration (examples: 36h, 7d, 2w, 6m, 1y, 2y5m7d3h)");
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: u32 = digits.parse().map_err(|_| bad())?;
            digits.clear();
            match c {
                'y' => w.years += n,
                'm' => w.months += n,
                'w' => w.days += 7 * n,
                'd' => w.days += n,
                'h' => w.hours += n,
                _ => return Err(bad()),
            }
        }
        if !digits.is_empty() || w == Within::default() {
            return Err(bad());
        }
        Ok(w)
    }

    /// `t` minus this duration, calendar-wise (local dates, as restic's `AddDate`).
    pub fn before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let local = t.with_timezone(&Local);
        let months = self.years * 12 + self.months;
        let shifted = local
            .checked_sub_months(Months::new(months))
            .and_then(|d| d.checked_sub_days(chrono::Days::new(self.days.into())))
            .unwrap_or(local);
        shifted.with_timezone(&Utc) - chrono::Duration::hours(self.hours.into())
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// What to keep. `None` is "not given"; `Some(-1)` is "no limit".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Policy {
    pub last: Option<i32>,
    pub hourly: Option<i32>,
    pub daily: Option<i32>,
    pub weekly: Option<i32>,
    pub monthly: Option<i32>,
    pub yearly: Option<i32>,
    pub within: Option<Within>,
}

impl Policy {
    /// No rule given (prune refuses it: it would keep everything, or worse, nothing).
    pub fn is_empty(&self) -> bool {
        let counts = [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ];
        self.within.is_none() && counts.iter().all(|c| c.is_none_or(|n| n == 0))
    }

    /// Counts below -1 mean nothing.
    pub fn validate(&self) -> Result<(), String> {
        for (flag, v) in self.rules() {
            if v.is_some_and(|n| n < -1) {
                return Err(format!("--keep-{flag} takes a count, or -1 for all"));
            }
        }
        Ok(())
    }

    fn rules(&self) -> [(&'static str, Option<i32>); 6] {
        [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
    }

    /// The policy as flags (`--keep-daily 7 --keep-within 30d`), for messages and schedules.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, v) in self.rules() {
            if let Some(n) = v {
                args.push(format!("--keep-{flag}"));
                args.push(n.to_string());
            }
        }
        if let Some(w) = self.within {
            args.push("--keep-within".into());
            args.push(w.to_string());
        }
        args
    }
}

/// The verdict on one backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub keep: bool,
    /// Why it stays: `last`, `daily`, `within 7d`, `newest`; empty when it goes.
    pub reasons: Vec<String>,
}

/// Applies `policy` to backups taken at `times` (any order); returns one decision per time, in
/// the same order. The newest is always kept. An empty policy keeps everything.
pub fn apply(times: &[DateTime<Utc>], policy: &Policy) -> Vec<Decision> {
    apply_in(times, policy, &Local)
}

/// `apply` with the time zone that defines the hours, days, weeks... (tests use fixed ones).
pub fn apply_in<Tz: TimeZone>(times: &[DateTime<Utc>], policy: &Policy, tz: &Tz) -> Vec<Decision> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    // Newest first; stable, so equal times keep their given order.
    order.sort_by(|&a, &b| times[b].cmp(&times[a]));
    let mut decisions = vec![
        Decision {
            keep: false,
            reasons: Vec::new(),
        };
        times.len()
    ];
    if policy.is_empty() {
        for d in &mut decisions {
            d.keep = true;
            d.reasons.push("no rule given".into());
        }
        return decisions;
    }
    type Bucket = fn(&DateTime<chrono::FixedOffset>, usize) -> i64;
    let always: Bucket = |_, nr| nr as i64;
    let hour: Bucket = |d, _| {
        (d.year() as i64) * 1_000_000
            + (d.month() as i64) * 10_000
            + (d.day() as i64) * 100
            + d.hour() as i64
    };
    let day: Bucket = |d, _| (d.year() as i64) * 10_000 + (d.month() as i64) * 100 + d.day() as i64;
    let week: Bucket = |d, _| {
        let w = d.iso_week();
        (w.year() as i64) * 100 + w.week() as i64
    };
    let month: Bucket = |d, _| (d.year() as i64) * 100 + d.month() as i64;
    let year: Bucket = |d, _| d.year() as i64;
    let mut buckets: Vec<(&str, i32, Bucket, Option<i64>)> = [
        ("last", policy.last, always),
        ("hourly", policy.hourly, hour),
        ("daily", policy.daily, day),
        ("weekly", policy.weekly, week),
        ("monthly", policy.monthly, month),
        ("yearly", policy.yearly, year),
    ]
    .into_iter()
    .filter_map(|(name, count, f)| count.filter(|&n| n != 0).map(|n| (name, n, f, None)))
    .collect();
    let newest = order.first().map(|&i| times[i]);
    let threshold = policy.within.zip(newest).map(|(w, t)| w.before(t));
    let last_index = order.len().saturating_sub(1);
    for (nr, &i) in order.iter().enumerate() {
        let t = times[i];
        let local = t.with_timezone(tz).fixed_offset();
        let d = &mut decisions[i];
        if nr == 0 {
            d.keep = true;
            d.reasons.push("newest".into());
        }
        if let (Some(limit), Some(w)) = (threshold, policy.within) {
            if t > limit {
                d.keep = true;
                d.reasons.push(format!("within {w}"));
            }
        }
        for (name, count, bucket, last) in buckets.iter_mut() {
            if *count == 0 {
                continue;
            }
            let value = bucket(&local, nr);
            // A new period, or the oldest backup while the rule still has room: restic keeps
            // it to make the history as long as the counts allow.
            if Some(value) != *last || nr == last_index {
                d.keep = true;
                d.reasons.push((*name).to_string());
                *last = Some(value);
                if *count > 0 {
                    *count -= 1;
                }
            }
        }
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveDate};

    fn utc(s: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        Utc.from_utc_datetime(&naive)
    }

    fn kept(times: &[DateTime<Utc>], p: &Policy) -> Vec<String> {
        let d = apply_in(times, p, &Utc);
        let mut out: Vec<String> = times
            .iter()
            .zip(d)
            .filter(|(_, d)| d.keep)
            .map(|(t, _)| t.format("%Y-%m-%d %H:%M").to_string())
            .collect();
        out.sort();
        out
    }

    /// One backup a day at 03:00 for `n` days ending 2026-11-25.
    fn daily(n: i64) -> Vec<DateTime<Utc>> {
        let end = utc("2026-11-25 03:00");
        (0..n).map(|i| end - chrono::Duration::days(i)).collect()
    }

    #[test]
    fn within_parses_restic_style() {
        assert_eq!(
            Within::parse("2y5m7d3h").unwrap(),
            Within {
                years: 2,
                months: 5,
                days: 7,
                hours: 3
            }
        );
        assert_eq!(Within::parse("2w").unwrap().days, 14);
        assert_eq!(Within::parse("36h").unwrap().to_string(), "36h");
        for bad in ["", "7", "d", "7x", "0d", "1.5d"] {
            assert!(Within::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn within_is_calendar_arithmetic() {
        let w = Within::parse("1m").unwrap();
        let t = Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2026, 3, 31)
                    .unwrap()
                    .and_hms_opt(12, 0, 0)
                    .unwrap(),
            )
            .unwrap()
            .with_timezone(&Utc);
        let before = w.before(t).with_timezone(&Local);
        assert_eq!(before.format("%m-%d %H").to_string(), "02-28 12");
    }

    #[test]
    fn empty_policy_keeps_all() {
        let times = daily(5);
        assert!(Policy::default().is_empty());
        assert_eq!(kept(&times, &Policy::default()).len(), 5);
        let zero = Policy {
            daily: Some(0),
            ..Default::default()
        };
        assert!(zero.is_empty());
    }

    #[test]
    fn keep_last() {
        let times = daily(10);
        let p = Policy {
            last: Some(3),
            ..Default::default()
        };
        assert_eq!(
            kept(&times, &p),
            ["2026-11-23 03:00", "2026-11-24 03:00", "2026-11-25 03:00"]
        );
        let all = Policy {
            last: Some(-1),
            ..Default::default()
        };
        assert_eq!(kept(&times, &all).len(), 10);
    }

    #[test]
    fn keep_daily_takes_the_newest_of_each_day() {
        let mut times = daily(5);
        // Three more on the newest day and one more on the day before.
        times.push(utc("2026-11-25 01:00"));
        times.push(utc("2026-11-25 02:00"));
        times.push(utc("2026-11-24 23:00"));
        let p = Policy {
            daily: Some(3),
            ..Default::default()
        };
        assert_eq!(
            kept(&times, &p),
            ["2026-11-23 03:00", "2026-11-24 23:00", "2026-11-25 03:00"]
        );
    }

    #[test]
    fn the_oldest_stays_while_counts_are_left() {
        // Three days of backups and a rule for seven: all three days, which includes the
        // oldest; with two backups on the oldest day, the older one is kept too.
        let mut times = daily(3);
        times.push(utc("2026-11-23 01:00"));
        let p = Policy {
            daily: Some(7),
            ..Default::default()
        };
        assert_eq!(kept(&times, &p).len(), 4);
        // A rule with no room left does not keep it.
        let p = Policy {
            daily: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(&times, &p), ["2026-11-24 03:00", "2026-11-25 03:00"]);
    }

    #[test]
    fn weekly_uses_iso_weeks() {
        // 2026-11-22 is a Sunday (ISO week 47), 2026-11-23 a Monday (week 48).
        let times = vec![
            utc("2026-11-25 03:00"),
            utc("2026-11-23 03:00"),
            utc("2026-11-22 03:00"),
            utc("2026-11-16 03:00"),
            utc("2026-11-09 03:00"),
        ];
        let p = Policy {
            weekly: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(&times, &p), ["2026-11-22 03:00", "2026-11-25 03:00"]);
    }

    #[test]
    fn monthly_and_yearly() {
        let times: Vec<_> = [
            "2026-11-25 03:00",
            "2026-11-01 03:00",
            "2026-10-31 03:00",
            "2026-10-15 03:00",
            "2026-09-30 03:00",
            "2025-12-31 03:00",
            "2025-06-01 03:00",
            "2024-01-01 03:00",
        ]
        .iter()
        .map(|s| utc(s))
        .collect();
        let p = Policy {
            monthly: Some(3),
            ..Default::default()
        };
        assert_eq!(
            kept(&times, &p),
            ["2026-09-30 03:00", "2026-10-31 03:00", "2026-11-25 03:00"]
        );
        let p = Policy {
            yearly: Some(10),
            ..Default::default()
        };
        assert_eq!(
            kept(&times, &p),
            ["2024-01-01 03:00", "2025-12-31 03:00", "2026-11-25 03:00"]
        );
    }

    #[test]
    fn hourly() {
        let times = vec![
            utc("2026-11-25 03:50"),
            utc("2026-11-25 03:10"),
            utc("2026-11-25 02:59"),
            utc("2026-11-25 01:00"),
        ];
        let p = Policy {
            hourly: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(&times, &p), ["2026-11-25 02:59", "2026-11-25 03:50"]);
    }

    #[test]
    fn within_counts_from_the_newest_backup_not_now() {
        let times = daily(30);
        let p = Policy {
            within: Some(Within::parse("7d").unwrap()),
            ..Default::default()
        };
        // Newest is 11-25 03:00; 7 days before is 11-18 03:00, which is not strictly after.
        let k = kept(&times, &p);
        assert_eq!(k.first().unwrap(), "2026-11-19 03:00");
        assert_eq!(k.len(), 7);
    }

    #[test]
    fn rules_combine_and_reasons_are_listed() {
        let times = daily(40);
        let p = Policy {
            last: Some(2),
            daily: Some(3),
            weekly: Some(2),
            ..Default::default()
        };
        let d = apply_in(&times, &p, &Utc);
        // times[0] is Wednesday 2026-11-25, the newest; [3] is Sunday 11-22, the newest of
        // the previous ISO week.
        assert_eq!(d[0].reasons, ["newest", "last", "daily", "weekly"]);
        assert_eq!(d[1].reasons, ["last", "daily"]);
        assert_eq!(d[2].reasons, ["daily"]);
        assert_eq!(d[3].reasons, ["weekly"]);
        assert_eq!(d.iter().filter(|x| x.keep).count(), 4);
        assert!(d[4..].iter().all(|x| !x.keep && x.reasons.is_empty()));
    }

    #[test]
    fn buckets_follow_the_time_zone() {
        // 23:30 UTC on the 24th is 01:30 on the 25th in UTC+2.
        let times = vec![
            utc("2026-11-25 01:00"),
            utc("2026-11-24 23:30"),
            utc("2026-11-24 12:00"),
        ];
        let p = Policy {
            daily: Some(2),
            ..Default::default()
        };
        let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
        let keeps = |d: Vec<Decision>| d.iter().map(|x| x.keep).collect::<Vec<_>>();
        assert_eq!(keeps(apply_in(&times, &p, &Utc)), [true, true, false]);
        assert_eq!(keeps(apply_in(&times, &p, &plus2)), [true, false, true]);
    }

    #[test]
    fn the_newest_is_always_kept() {
        let times = daily(3);
        let p = Policy {
            within: Some(Within::parse("1h").unwrap()),
            ..Default::default()
        };
        let d = apply_in(&times, &p, &Utc);
        assert!(d[0].keep);
        assert!(d[0].reasons.contains(&"newest".to_string()));
        assert!(!d[1].keep && !d[2].keep);
    }

    #[test]
    fn policy_round_trips_to_flags() {
        let p = Policy {
            daily: Some(7),
            within: Some(Within::parse("30d").unwrap()),
            ..Default::default()
        };
        assert_eq!(p.to_args(), ["--keep-daily", "7", "--keep-within", "30d"]);
        assert!(Policy {
            weekly: Some(-2),
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
