//! Records to items: a task's layout turns the columns of a benchmark file into the canonical
//! item (question, choices, gold answer, group), keeping every column for templates.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, TaskError};
use crate::records::{Record, read_records};
use crate::rubric::Criterion;
use crate::spec::{AnswerKind, Layout, TaskDef, TaskKind};

/// Most choices a multiple-choice item may have (MMLU-Pro has 10).
pub const MAX_CHOICES: usize = 26;

/// What a response is scored against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// Multiple choice: the choices and the 0-based index of the correct one.
    Choice {
        choices: Vec<String>,
        correct: usize,
    },
    /// Exact match: the gold answer text (already cut after `####` where asked).
    Answer { answer: String },
    /// Instruction following: IFEval instruction ids with their keyword arguments.
    Instructions {
        ids: Vec<String>,
        kwargs: Vec<serde_json::Map<String, Value>>,
    },
    /// Rubric: criteria and an optional reference answer.
    Rubric {
        criteria: Vec<Criterion>,
        reference: Option<String>,
    },
}

/// One benchmark item, ready for prompting and scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Stable id (the id column, or `<file stem>:<row>`).
    pub id: String,
    /// Position in the task's item list.
    pub index: usize,
    /// Cluster key (subject, passage), if the layout names a group column.
    pub group: Option<String>,
    pub question: String,
    pub context: Option<String>,
    pub target: Target,
    /// All columns of the record plus derived fields, as template strings.
    pub fields: serde_json::Map<String, Value>,
}

impl Item {
    /// The choices of a multiple-choice item (empty otherwise).
    pub fn choices(&self) -> &[String] {
        match &self.target {
            Target::Choice { choices, .. } => choices,
            _ => &[],
        }
    }
}

/// A value as template text: strings as they are, numbers and booleans printed, lists joined.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => {
            // Integers stored as floats (pandas) print without ".0".
            match n.as_f64() {
                Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                    format!("{}", f as i64)
                }
                _ => n.to_string(),
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join("\n"),
        Value::Object(_) => v.to_string(),
    }
}

impl TaskDef {
    /// Loads the items of this task from the given files (all in one list, in order).
    pub fn load_items(&self, paths: &[impl AsRef<Path>]) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let records = read_records(path, self.file.data.format)?;
            self.append_items(records, path, &mut items)?;
        }
        Ok(items)
    }

    /// Loads the items from the task's own data files under `root`.
    pub fn load_items_from_root(&self, root: &Path) -> Result<Vec<Item>> {
        self.load_items(&self.data_paths(root))
    }

    /// Turns records (read from `path`) into items, appending to `items`.
    pub fn append_items(
        &self,
        records: Vec<Record>,
        path: &Path,
        items: &mut Vec<Item>,
    ) -> Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let layout = self.pick_layout(first, path)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (row, record) in records.into_iter().enumerate() {
            if self.file.data.skip_header_rows
                && layout
                    .question
                    .as_ref()
                    .is_some_and(|q| record.get(q).and_then(Value::as_str) == Some(q.as_str()))
            {
                continue;
            }
            if let (Some(col), Some(subset)) = (&self.file.data.subset_column, &self.subset)
                && record.get(col).map(value_text).as_deref() != Some(subset.as_str())
            {
                continue;
            }
            let index = items.len();
            let item = self
                .record_to_item(layout, record, index, &stem, row)
                .map_err(|message| TaskError::Record {
                    path: path.to_path_buf(),
                    record: row,
                    message,
                })?;
            items.push(item);
        }
        Ok(())
    }

    fn pick_layout(&self, first: &Record, path: &Path) -> Result<&Layout> {
        self.file
            .layouts
            .iter()
            .find(|l| l.columns().iter().all(|c| first.contains_key(*c)))
            .ok_or_else(|| TaskError::NoLayout {
                path: path.to_path_buf(),
                task: self.name.clone(),
                columns: first.keys().cloned().collect(),
                expected: self
                    .file
                    .layouts
                    .iter()
                    .map(|l| format!("[{}]", l.columns().join(", ")))
                    .collect::<Vec<_>>()
                    .join(" or "),
            })
    }

    fn record_to_item(
        &self,
        layout: &Layout,
        record: Record,
        index: usize,
        stem: &str,
        row: usize,
    ) -> std::result::Result<Item, String> {
        let text = |col: &Option<String>| -> Option<String> {
            col.as_ref().and_then(|c| record.get(c)).map(value_text)
        };
        let id = text(&layout.id)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("{stem}:{row}"));
        let question = text(&layout.question).unwrap_or_default();
        let context = text(&layout.context).filter(|s| !s.trim().is_empty());
        let group = text(&layout.group)
            .filter(|g| !g.trim().is_empty())
            .or_else(|| self.file.data.group_by_file.then(|| stem.to_string()));
        let target = match self.kind() {
            TaskKind::MultipleChoice => choice_target(layout, &record)?,
            TaskKind::ExactMatch => {
                let raw = text(&layout.answer).unwrap_or_default();
                let answer = match layout.answer_kind {
                    Some(AnswerKind::AfterHashes) => match raw.rfind("####") {
                        Some(p) => raw[p + 4..].trim().to_string(),
                        None => return Err("answer has no `####` marker".into()),
                    },
                    _ => raw.trim().to_string(),
                };
                if answer.is_empty() {
                    return Err("empty answer".into());
                }
                Target::Answer { answer }
            }
            TaskKind::InstructionFollowing => instruction_target(layout, &record)?,
            TaskKind::Rubric => {
                let criteria = match &layout.rubric {
                    Some(col) => {
                        let v = record.get(col).cloned().unwrap_or(Value::Null);
                        let v = match v {
                            Value::String(s) => serde_json::from_str(&s)
                                .map_err(|e| format!("rubric column `{col}`: {e}"))?,
                            v => v,
                        };
                        serde_json::from_value::<Vec<Criterion>>(v)
                            .map_err(|e| format!("rubric column `{col}`: {e}"))?
                    }
                    None => self
                        .file
                        .rubric
                        .as_ref()
                        .map(|r| r.criteria.clone())
                        .unwrap_or_default(),
                };
                if criteria.is_empty() {
                    return Err("rubric has no criteria".into());
                }
                Target::Rubric {
                    criteria,
                    reference: text(&layout.reference),
                }
            }
        };
        let mut fields = record;
        for d in &self.file.derived {
            let from = fields.get(&d.from).map(value_text).unwrap_or_default();
            let Some(v) = d.map.get(from.trim()) else {
                return Err(format!(
                    "derived field `{}`: value {from:?} of column `{}` is not in its map",
                    d.name, d.from
                ));
            };
            fields.insert(d.name.clone(), Value::String(v.clone()));
        }
        Ok(Item {
            id,
            index,
            group,
            question,
            context,
            target,
            fields,
        })
    }
}

fn choice_target(layout: &Layout, record: &Record) -> std::result::Result<Target, String> {
    let mut choices: Vec<String> = if let Some(col) = &layout.choices {
        match record.get(col) {
            Some(Value::Array(a)) => a.iter().map(value_text).collect(),
            // A list stored as a JSON string (CSV exports).
            Some(Value::String(s)) if s.trim_start().starts_with('[') => {
                serde_json::from_str::<Vec<Value>>(s)
                    .map_err(|e| format!("choices column `{col}`: {e}"))?
                    .iter()
                    .map(value_text)
                    .collect()
            }
            _ => return Err(format!("choices column `{col}` is not a list")),
        }
    } else if !layout.choice_columns.is_empty() {
        let mut v: Vec<String> = layout
            .choice_columns
            .iter()
            .map(|c| record.get(c).map(value_text).unwrap_or_default())
            .collect();
        while v.last().is_some_and(|s| s.trim().is_empty()) {
            v.pop();
        }
        v
    } else {
        layout.fixed_choices.clone()
    };
    for c in &mut choices {
        *c = c.trim().to_string();
    }
    if choices.len() < 2 || choices.len() > MAX_CHOICES {
        return Err(format!(
            "{} choices (need 2 to {MAX_CHOICES})",
            choices.len()
        ));
    }
    let col = layout.answer.as_deref().unwrap_or("answer");
    let answer = record
        .get(col)
        .ok_or_else(|| format!("answer column `{col}` missing"))?;
    let kind = layout.answer_kind.unwrap_or(AnswerKind::Index0);
    let correct = answer_index(answer, kind, &choices)
        .map_err(|e| format!("answer column `{col}` = {answer}: {e}"))?;
    Ok(Target::Choice { choices, correct })
}

/// Maps a gold answer value to a 0-based choice index.
pub fn answer_index(
    answer: &Value,
    kind: AnswerKind,
    choices: &[String],
) -> std::result::Result<usize, String> {
    let n = choices.len();
    let as_int = || -> std::result::Result<i64, String> {
        match answer {
            Value::Number(x) => x
                .as_i64()
                .or_else(|| x.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| "not an integer".to_string()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
                .ok_or_else(|| "not an integer".to_string()),
            Value::Bool(b) => Ok(i64::from(*b)),
            _ => Err("not an integer".into()),
        }
    };
    let idx = match kind {
        AnswerKind::Index0 => as_int()?,
        AnswerKind::Index1 => as_int()? - 1,
        AnswerKind::Letter => {
            let s = value_text(answer);
            let s = s
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            let mut cs = s.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => {
                    i64::from(c.to_ascii_uppercase() as u8 - b'A')
                }
                _ => return Err("not a letter".into()),
            }
        }
        AnswerKind::Text => {
            let s = value_text(answer);
            let s = s.trim();
            let hits: Vec<usize> = (0..n).filter(|&i| choices[i] == s).collect();
            match hits.as_slice() {
                [i] => *i as i64,
                [] => return Err("matches no choice text".into()),
                _ => return Err("matches more than one choice".into()),
            }
        }
        AnswerKind::Value | AnswerKind::AfterHashes => {
            return Err("answer kind is for exact-match tasks".into());
        }
    };
    if idx < 0 || idx as usize >= n {
        return Err(format!("index out of range for {n} choices"));
    }
    Ok(idx as usize)
}

fn instruction_target(layout: &Layout, record: &Record) -> std::result::Result<Target, String> {
    let ids_col = layout.instruction_ids.as_deref().unwrap_or_default();
    let kw_col = layout.instruction_kwargs.as_deref().unwrap_or_default();
    let parse_list = |col: &str| -> std::result::Result<Vec<Value>, String> {
        match record.get(col) {
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(Value::String(s)) => {
                serde_json::from_str(s).map_err(|e| format!("column `{col}`: {e}"))
            }
            _ => Err(format!("column `{col}` is not a list")),
        }
    };
    let ids: Vec<String> = parse_list(ids_col)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("column `{ids_col}`: not a string"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let kwargs: Vec<serde_json::Map<String, Value>> = parse_list(kw_col)?
        .into_iter()
        .map(|v| match v {
            // The Hugging Face copies store every key of every instruction, null when unused.
            Value::Object(m) => Ok(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
            Value::Null => Ok(serde_json::Map::new()),
            _ => Err(format!("column `{kw_col}`: not an object")),
        })
        .collect::<std::result::Result<_, _>>()?;
    if ids.len() != kwargs.len() {
        return Err(format!(
            "{} instruction ids but {} kwargs",
            ids.len(),
            kwargs.len()
        ));
    }
    if ids.is_empty() {
        return Err("no instructions".into());
    }
    Ok(Target::Instructions { ids, kwargs })
}
