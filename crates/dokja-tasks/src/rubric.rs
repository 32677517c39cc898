//! Rubric grading by a judge model: the data model (criteria with points), the judge prompt,
//! and parsing the judge's per-criterion grades. Running the judge is the runner's job.
//!
//! The judge is asked for one JSON object `{"scores": [{"criterion": 1, "points": 2,
//! "reason": "..."}]}`. Lines like `1: 2/3` or `Criterion 1: 2 points` are accepted as a
//! fallback. Every criterion must be graded exactly once, and points must lie in
//! `0..=max`; otherwise the grade is an extraction failure, not a zero.

use serde::{Deserialize, Serialize};

use crate::prompt::render_template;

/// One rubric criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// What the response must do.
    #[serde(alias = "description")]
    pub criterion: String,
    /// Most points the criterion gives.
    pub points: f64,
}

/// The default judge prompt.
pub const DEFAULT_JUDGE_TEMPLATE: &str = "You are grading a response against a rubric. Grade \
each criterion on its own, giving between 0 and its maximum points.\n\n\
## Question\n{question}\n\n## Reference answer\n{reference}\n\n## Response\n{response}\n\n\
## Criteria\n{criteria}\n\n\
Reply with one JSON object and nothing else: \
{{\"scores\": [{{\"criterion\": <number>, \"points\": <points>, \"reason\": \"<one sentence>\"}}, ...]}}";

/// Renders the judge prompt.
pub fn judge_prompt(
    template: Option<&str>,
    question: &str,
    response: &str,
    reference: Option<&str>,
    criteria: &[Criterion],
) -> Result<String, String> {
    let list = criteria
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{}. ({} points) {}", i + 1, c.points, c.criterion))
        .collect::<Vec<_>>()
        .join("\n");
    render_template(template.unwrap_or(DEFAULT_JUDGE_TEMPLATE), &|f| match f {
        "question" => Some(question.to_string()),
        "response" => Some(response.to_string()),
        "reference" => Some(reference.unwrap_or("(none)").to_string()),
        "criteria" => Some(list.clone()),
        _ => None,
    })
}

/// A judge's grades, one per criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RubricGrade {
    pub points: Vec<f64>,
    pub total: f64,
    pub max: f64,
}

impl RubricGrade {
    /// Total over maximum, in `[0, 1]`.
    pub fn fraction(&self) -> f64 {
        if self.max > 0.0 {
            self.total / self.max
        } else {
            0.0
        }
    }
}

/// Why a judgement could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeParseError {
    #[error("no grades found in the judge's reply")]
    NoGrades,
    #[error("criterion {0} is not in the rubric")]
    UnknownCriterion(usize),
    #[error("criterion {0} graded twice")]
    Duplicate(usize),
    #[error("criterion {0} not graded")]
    Missing(usize),
    #[error("criterion {criterion}: {points} points outside 0..={max}")]
    OutOfRange {
        criterion: usize,
        points: String,
        max: String,
    },
}

#[derive(Deserialize)]
struct JudgeReply {
    scores: Vec<JudgeScore>,
}

#[derive(Deserialize)]
struct JudgeScore {
    criterion: serde_json::Value,
    points: f64,
}

/// Parses a judge reply against `criteria`.
pub fn parse_judgement(
    reply: &str,
    criteria: &[Criterion],
) -> Result<RubricGrade, JudgeParseError> {
    let pairs = json_pairs(reply)
        .or_else(|| line_pairs(reply))
        .ok_or(JudgeParseError::NoGrades)?;
    let mut points: Vec<Option<f64>> = vec![None; criteria.len()];
    for (k, p) in pairs {
        let slot = points
            .get_mut(k.wrapping_sub(1))
            .ok_or(JudgeParseError::UnknownCriterion(k))?;
        if slot.is_some() {
            return Err(JudgeParseError::Duplicate(k));
        }
        let max = criteria[k - 1].points;
        if !(p.is_finite() && (0.0..=max).contains(&p)) {
            return Err(JudgeParseError::OutOfRange {
                criterion: k,
                points: p.to_string(),
                max: max.to_string(),
            });
        }
        *slot = Some(p);
    }
    let points: Vec<f64> = points
        .into_iter()
        .enumerate()
        .map(|(i, p)| p.ok_or(JudgeParseError::Missing(i + 1)))
        .collect::<Result<_, _>>()?;
    Ok(RubricGrade {
        total: points.iter().sum(),
        max: criteria.iter().map(|c| c.points).sum(),
        points,
    })
}

fn json_pairs(reply: &str) -> Option<Vec<(usize, f64)>> {
    let start = reply.find('{')?;
    let end = reply.rfind('}')?;
    if end <= start {
        return None;
    }
    let parsed: JudgeReply = serde_json::from_str(&reply[start..=end]).ok()?;
    parsed
        .scores
        .into_iter()
        .map(|s| {
            let k = match &s.criterion {
                serde_json::Value::Number(n) => n.as_u64()? as usize,
                serde_json::Value::String(t) => t.trim().parse().ok()?,
                _ => return None,
            };
            Some((k, s.points))
        })
        .collect()
}

/// `1: 2/3`, `Criterion 2: 1 point`, `기준 3: 2점`.
fn line_pairs(reply: &str) -> Option<Vec<(usize, f64)>> {
    use std::sync::LazyLock;
    static LINE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?im)^\s*(?:criterion|기준|항목)?\s*(\d{1,3})\s*[:.)]\s*(-?\d+(?:\.\d+)?)",
        )
        .expect("valid regex")
    });
    let pairs: Vec<(usize, f64)> = LINE
        .captures_iter(reply)
        .filter_map(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?)))
        .collect();
    (!pairs.is_empty()).then_some(pairs)
}
