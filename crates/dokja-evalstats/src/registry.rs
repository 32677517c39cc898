//! The reference registry: reference models with their release dates, and which of them count
//! as "global models released in the prior six months" for an evaluation date.
//!
//! Window rule (calendar months): for evaluation date `E`, a model counts when
//! `E - 6 months <= release < E`, i.e. the start is inclusive and the evaluation day itself is
//! excluded (a model released that day was not available to compare against). `E - 6 months`
//! is the same day of the month six months earlier, clamped to that month's last day
//! (2026-08-31 -> 2026-02-28; 2028-08-31 -> 2028-02-29).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{EvalStatsError, Result};

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in `month` of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

impl Date {
    /// A date, checked.
    pub fn new(year: i32, month: u32, day: u32) -> Result<Date> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || !(1..=9999).contains(&year)
        {
            return Err(EvalStatsError::Date(format!(
                "{year:04}-{month:02}-{day:02}"
            )));
        }
        Ok(Date { year, month, day })
    }

    /// The same day `months` calendar months earlier, clamped to the month's last day.
    pub fn minus_months(self, months: u32) -> Date {
        let total = self.year * 12 + (self.month as i32 - 1) - months as i32;
        let year = total.div_euclid(12);
        let month = total.rem_euclid(12) as u32 + 1;
        Date {
            year,
            month,
            day: self.day.min(days_in_month(year, month)),
        }
    }
}

impl FromStr for Date {
    type Err = EvalStatsError;
    fn from_str(s: &str) -> Result<Date> {
        let bad = || EvalStatsError::Date(s.to_string());
        let parts: Vec<&str> = s.trim().split('-').collect();
        let [y, m, d] = parts.as_slice() else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let num = |p: &str| p.parse::<u32>().map_err(|_| bad());
        Date::new(num(y)? as i32, num(m)?, num(d)?).map_err(|_| bad())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A model the programme compares against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceModel {
    pub name: String,
    #[serde(default)]
    pub organization: String,
    pub release_date: Date,
    /// A global (non-programme) model, eligible as a frontier reference.
    #[serde(default = "yes")]
    pub global: bool,
    /// Where the release date comes from.
    #[serde(default)]
    pub source: String,
}

fn yes() -> bool {
    true
}

/// The half-open window `[start, end)` of eligible release dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseWindow {
    /// Inclusive.
    pub start: Date,
    /// Exclusive (the evaluation date).
    pub end: Date,
}

impl ReleaseWindow {
    /// The window of `months` calendar months before `evaluation`.
    pub fn prior_months(evaluation: Date, months: u32) -> ReleaseWindow {
        ReleaseWindow {
            start: evaluation.minus_months(months),
            end: evaluation,
        }
    }

    pub fn contains(&self, d: Date) -> bool {
        self.start <= d && d < self.end
    }
}

/// The programme's window: six calendar months.
pub const WINDOW_MONTHS: u32 = 6;

/// Reference models.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRegistry {
    #[serde(default, rename = "model")]
    pub models: Vec<ReferenceModel>,
}

impl ReferenceRegistry {
    /// Parses a registry from JSON (`{"model": [{"name": ..., "release_date": "YYYY-MM-DD"}]}`).
    pub fn from_json(text: &str) -> Result<ReferenceRegistry> {
        let reg: ReferenceRegistry =
            serde_json::from_str(text).map_err(|e| EvalStatsError::Registry(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for m in &reg.models {
            if !seen.insert(m.name.as_str()) {
                return Err(EvalStatsError::Registry(format!(
                    "model {:?} listed twice",
                    m.name
                )));
            }
        }
        Ok(reg)
    }

    /// Global models released in the [`WINDOW_MONTHS`] months before `evaluation`, newest first.
    pub fn eligible(&self, evaluation: Date) -> (ReleaseWindow, Vec<&ReferenceModel>) {
        let window = ReleaseWindow::prior_months(evaluation, WINDOW_MONTHS);
        let mut v: Vec<&ReferenceModel> = self
            .models
            .iter()
            .filter(|m| m.global && window.contains(m.release_date))
            .collect();
        v.sort_by(|a, b| {
            b.release_date
                .cmp(&a.release_date)
                .then_with(|| a.name.cmp(&b.name))
        });
        (window, v)
    }
}
