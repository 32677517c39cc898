//! Calendar dates without a date crate: validation of `YYYY-MM-DD` and the UTC timestamp
//! written as `added_at`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Checks `text` is a real calendar date written `YYYY-MM-DD` (years 1000 to 9999).
pub(crate) fn check_date(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err("expected a date written YYYY-MM-DD".into());
    }
    let number = |range: std::ops::Range<usize>| -> u32 {
        text[range].parse().expect("digits checked above")
    };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    if year < 1000 {
        return Err(format!("year {year} is out of range"));
    }
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} does not exist"));
    }
    let last = days_in_month(year, month);
    if day == 0 || day > last {
        return Err(format!("day {day} does not exist in {year}-{month:02}"));
    }
    Ok(())
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The current time in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_dates_pass_and_impossible_ones_fail() {
        for ok in ["2024-02-29", "2000-02-29", "1999-12-31", "2025-01-01"] {
            assert_eq!(check_date(ok), Ok(()), "{ok}");
        }
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-4-01",
            "24-04-01",
            "2024/04/01",
            "2024-04-01T00:00",
            "０２０２-01-01",
            "",
        ] {
            assert!(check_date(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_checked_without_panicking(text in "\\PC{0,12}") {
            let _ = check_date(&text);
        }

        #[test]
        fn every_formatted_day_is_a_valid_date(secs in 0u64..253_402_300_799) {
            let stamp = format_utc(secs);
            proptest::prop_assert_eq!(check_date(&stamp[..10]), Ok(()));
        }
    }

    #[test]
    fn timestamps_match_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        // 2000-02-29T12:34:56Z, a leap day in a century leap year.
        assert_eq!(format_utc(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(format_utc(1_767_225_599), "2025-12-31T23:59:59Z");
    }
}
