//! The task file format (TOML), documented for users in `docs/task-files.md`.
//!
//! A task file describes one benchmark: where its rows come from and which columns mean what
//! (`[[layout]]`, several allowed for the several published copies of a benchmark), how a
//! prompt is written (`[prompt]`), how few-shot examples are chosen (`[fewshot]`), and how an
//! answer is scored (`[scoring]`). Unknown keys are errors, so a typo is reported rather than
//! silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};

/// A parsed task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    pub task: TaskHeader,
    #[serde(default)]
    pub data: DataSpec,
    /// Column layouts, tried in order; the first whose columns are all present is used.
    #[serde(default, rename = "layout")]
    pub layouts: Vec<Layout>,
    /// Extra template fields computed from columns by a value map.
    #[serde(default, rename = "derive")]
    pub derived: Vec<DerivedField>,
    #[serde(default)]
    pub prompt: PromptSpec,
    #[serde(default)]
    pub fewshot: FewshotSpec,
    #[serde(default)]
    pub scoring: ScoringSpec,
    #[serde(default)]
    pub generation: GenerationSpec,
    /// Task-level rubric for judge grading (items may carry their own in a rubric column).
    #[serde(default)]
    pub rubric: Option<RubricSpec>,
}

/// `[task]`: what the task is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskHeader {
    /// Task name; with subsets, each expanded task is named `name/subset`.
    pub name: String,
    /// The suite the task belongs to (`kmmlu`, `click`...), used to group results.
    #[serde(default)]
    pub suite: Option<String>,
    pub kind: TaskKind,
    #[serde(default)]
    pub description: String,
    /// Where the benchmark comes from (paper, dataset page) so users can find the files.
    #[serde(default)]
    pub source: String,
    /// Subsets (e.g. KMMLU subjects): the task is expanded into one task per subset, and
    /// `{subset}` in data file names is replaced by the subset's name.
    #[serde(default)]
    pub subsets: Vec<String>,
}

/// The four kinds of task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Pick one of several choices.
    MultipleChoice,
    /// A short answer compared to a gold answer (numbers compared numerically).
    ExactMatch,
    /// Verifiable instruction following (IFEval checkers).
    InstructionFollowing,
    /// Free answer graded by a judge model against a rubric.
    Rubric,
}

/// `[data]`: where the records are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// File names relative to the data folder the user supplies; may contain `{subset}`.
    #[serde(default)]
    pub files: Vec<String>,
    /// File type when the extension does not say it.
    #[serde(default)]
    pub format: Option<crate::records::FileFormat>,
    /// Skip records whose question column holds the column's own name (stray header rows
    /// left by concatenating CSV files, as in some MMLU copies).
    #[serde(default)]
    pub skip_header_rows: bool,
    /// Keep only records whose column `column` equals the subset name (for files that hold
    /// all subsets, e.g. one CSV with a subject column).
    #[serde(default)]
    pub subset_column: Option<String>,
    /// Group items by the file they come from (file name without extension) when the layout
    /// names no group column (CLIcK: one file per category).
    #[serde(default)]
    pub group_by_file: bool,
}

/// How the answer column encodes the correct choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// 0-based choice index (`0`..`n-1`, number or numeric string).
    Index0,
    /// 1-based choice index (`1`..`n`), as KMMLU and KMMLU-Pro.
    Index1,
    /// A letter `A`, `B`, ... (also `(B)`), as MMLU-Pro.
    Letter,
    /// The text of the correct choice, as CLIcK.
    Text,
    /// For exact-match tasks: the answer as written (numbers compared numerically).
    Value,
    /// For exact-match tasks: the text after the last `####` (GSM8K solutions).
    AfterHashes,
}

/// `[[layout]]`: which column holds what. Only the entries the task kind needs are required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// A name for messages ("hf", "github copy").
    #[serde(default)]
    pub name: Option<String>,
    /// Column with a stable item id; without it the id is `<file stem>:<row>`.
    #[serde(default)]
    pub id: Option<String>,
    /// Column with the question (or the IFEval prompt).
    #[serde(default)]
    pub question: Option<String>,
    /// Column with a passage the question is about.
    #[serde(default)]
    pub context: Option<String>,
    /// Columns holding one choice each (`["A", "B", "C", "D"]`); empty cells are dropped
    /// from the end.
    #[serde(default)]
    pub choice_columns: Vec<String>,
    /// Column holding the list of choices.
    #[serde(default)]
    pub choices: Option<String>,
    /// Fixed choices for every item (`["아니오", "예"]`).
    #[serde(default)]
    pub fixed_choices: Vec<String>,
    /// Column with the gold answer.
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub answer_kind: Option<AnswerKind>,
    /// Column that groups items (subject, passage): standard errors are clustered by it and
    /// per-group scores can be macro-averaged.
    #[serde(default)]
    pub group: Option<String>,
    /// IFEval: column with the list of instruction ids.
    #[serde(default)]
    pub instruction_ids: Option<String>,
    /// IFEval: column with the list of keyword-argument objects.
    #[serde(default)]
    pub instruction_kwargs: Option<String>,
    /// Rubric tasks: column with the item's rubric (list of `{criterion, points}` objects).
    #[serde(default)]
    pub rubric: Option<String>,
    /// Rubric tasks: column with a reference answer shown to the judge.
    #[serde(default)]
    pub reference: Option<String>,
}

impl Layout {
    /// Every column this layout reads.
    pub fn columns(&self) -> Vec<&str> {
        let mut cols: Vec<&str> = [
            &self.id,
            &self.question,
            &self.context,
            &self.choices,
            &self.answer,
            &self.group,
            &self.instruction_ids,
            &self.instruction_kwargs,
            &self.rubric,
            &self.reference,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        cols.extend(self.choice_columns.iter().map(String::as_str));
        cols
    }
}

/// `[[derive]]`: a template field computed from a column through a value map, e.g. KoBEST
/// COPA's `question` "원인" -> connector "왜냐하면".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedField {
    pub name: String,
    pub from: String,
    pub map: BTreeMap<String, String>,
}

/// How choices are labelled in prompts and answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceLabels {
    /// A, B, C, ...
    #[default]
    Letters,
    /// 1, 2, 3, ...
    Numbers,
    /// ①, ②, ③, ... (Korean exams)
    Circled,
}

impl ChoiceLabels {
    /// The label of choice `i` (0-based).
    pub fn label(self, i: usize) -> String {
        match self {
            ChoiceLabels::Letters => char::from(b'A' + (i % 26) as u8).to_string(),
            ChoiceLabels::Numbers => (i + 1).to_string(),
            ChoiceLabels::Circled => match char::from_u32(0x2460 + i as u32) {
                Some(c) if i < 20 => c.to_string(),
                _ => (i + 1).to_string(),
            },
        }
    }
}

/// Chat (messages) or completion (one text) formatting of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptMode {
    Chat,
    Completion,
}

/// `[prompt]`: how an item becomes text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    /// The item's prompt with `{field}` substitution. Fields: `question`, `context`,
    /// `choices` (formatted choice list), `labels` ("A, B, C, D"), `group`, `subset`, then
    /// the derived fields and every column. `{{` and `}}` are literal braces.
    #[serde(default = "default_template")]
    pub template: String,
    /// Format of one line of `{choices}`: fields `label`, `text`.
    #[serde(default = "default_choice_format")]
    pub choice_format: String,
    #[serde(default)]
    pub labels: ChoiceLabels,
    /// System message (chat) or preamble (completion).
    #[serde(default)]
    pub system: Option<String>,
    /// Instruction appended after the prompt when answers are generated (e.g. how to state the
    /// answer); not used for log-likelihood scoring.
    #[serde(default)]
    pub generation_suffix: Option<String>,
    /// Text of a few-shot example's answer; fields as in `template` plus `answer_label`,
    /// `answer_text` and `gold` (`B. text` for choices, the gold answer otherwise).
    #[serde(default = "default_target_template")]
    pub target_template: String,
    /// Separator between few-shot examples in completion mode.
    #[serde(default = "default_shot_separator")]
    pub shot_separator: String,
    /// Default formatting when the caller does not choose.
    #[serde(default = "default_mode")]
    pub mode: PromptMode,
}

fn default_template() -> String {
    "{question}".into()
}
fn default_choice_format() -> String {
    "{label}. {text}".into()
}
fn default_target_template() -> String {
    "{gold}".into()
}
fn default_shot_separator() -> String {
    "\n\n".into()
}
fn default_mode() -> PromptMode {
    PromptMode::Chat
}

impl Default for PromptSpec {
    fn default() -> Self {
        PromptSpec {
            template: default_template(),
            choice_format: default_choice_format(),
            labels: ChoiceLabels::default(),
            system: None,
            generation_suffix: None,
            target_template: default_target_template(),
            shot_separator: default_shot_separator(),
            mode: default_mode(),
        }
    }
}

/// `[fewshot]`: seeded selection of worked examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FewshotSpec {
    /// Number of examples (0 = zero-shot).
    #[serde(default)]
    pub n: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Draw examples only from items of the same group (subject).
    #[serde(default)]
    pub same_group: bool,
}

fn default_seed() -> u64 {
    1234
}

impl Default for FewshotSpec {
    fn default() -> Self {
        FewshotSpec {
            n: 0,
            seed: default_seed(),
            same_group: false,
        }
    }
}

/// How multiple-choice items are scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McMethod {
    /// The choice whose continuation has the highest log-likelihood.
    #[default]
    Loglikelihood,
    /// The model writes an answer; the choice is extracted from the text.
    Generate,
}

/// What is scored as a choice's continuation under log-likelihood.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Continuation {
    /// The label (" A").
    #[default]
    Label,
    /// The choice text (" 예").
    Text,
}

/// How exact-match answers are compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Numerically when both sides are numbers, else as normalized math strings.
    #[default]
    Numeric,
    /// Case- and whitespace-insensitive string equality.
    Exact,
}

/// `[scoring]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringSpec {
    #[serde(default)]
    pub method: McMethod,
    #[serde(default)]
    pub continuation: Continuation,
    /// Prefix of each continuation (a space for most tokenizers).
    #[serde(default = "default_continuation_prefix")]
    pub continuation_prefix: String,
    /// Divide each choice's log-likelihood by its continuation's length in bytes
    /// (lm-eval's `acc_norm`) before taking the maximum.
    #[serde(default)]
    pub length_normalize: bool,
    #[serde(default)]
    pub compare: Compare,
}

fn default_continuation_prefix() -> String {
    " ".into()
}

impl Default for ScoringSpec {
    fn default() -> Self {
        ScoringSpec {
            method: McMethod::default(),
            continuation: Continuation::default(),
            continuation_prefix: default_continuation_prefix(),
            length_normalize: false,
            compare: Compare::default(),
        }
    }
}

/// `[generation]`: sampling settings passed through to the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSpec {
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: f64,
    #[serde(default)]
    pub stop: Vec<String>,
}

fn default_max_tokens() -> u32 {
    1024
}

impl Default for GenerationSpec {
    fn default() -> Self {
        GenerationSpec {
            max_tokens: default_max_tokens(),
            temperature: 0.0,
            stop: Vec::new(),
        }
    }
}

/// `[rubric]`: criteria graded by a judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RubricSpec {
    #[serde(default)]
    pub criteria: Vec<crate::rubric::Criterion>,
    /// Judge prompt template; fields `question`, `response`, `reference`, `criteria`
    /// (numbered list). Defaults to [`crate::rubric::DEFAULT_JUDGE_TEMPLATE`].
    #[serde(default)]
    pub judge_template: Option<String>,
}

impl TaskFile {
    /// Parses task-file text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<TaskFile> {
        let file: TaskFile = toml::from_str(text).map_err(|e| TaskError::TaskFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        file.validate(path)?;
        Ok(file)
    }

    /// Reads and parses a task file.
    pub fn load(path: &Path) -> Result<TaskFile> {
        let text = std::fs::read_to_string(path).map_err(|source| TaskError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        TaskFile::parse(&text, path)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let fail = |message: String| {
            Err(TaskError::TaskFile {
                path: path.to_path_buf(),
                message,
            })
        };
        if self.task.name.trim().is_empty() {
            return fail("[task] name is empty".into());
        }
        if self.layouts.is_empty() {
            return fail("no [[layout]]: say which columns hold what".into());
        }
        for (i, l) in self.layouts.iter().enumerate() {
            let which = l.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            let need = |what: &str, ok: bool| {
                if ok {
                    Ok(())
                } else {
                    fail(format!(
                        "layout {which}: a {:?} task needs {what}",
                        self.task.kind
                    ))
                }
            };
            match self.task.kind {
                TaskKind::MultipleChoice => {
                    need("`question`", l.question.is_some())?;
                    let sources = usize::from(l.choices.is_some())
                        + usize::from(!l.choice_columns.is_empty())
                        + usize::from(!l.fixed_choices.is_empty());
                    need(
                        "exactly one of `choices`, `choice_columns`, `fixed_choices`",
                        sources == 1,
                    )?;
                    need(
                        "`answer` and `answer_kind`",
                        l.answer.is_some() && l.answer_kind.is_some(),
                    )?;
                    need(
                        "an `answer_kind` of index0, index1, letter or text",
                        !matches!(
                            l.answer_kind,
                            Some(AnswerKind::Value | AnswerKind::AfterHashes)
                        ),
                    )?;
                }
                TaskKind::ExactMatch => {
                    need("`question`", l.question.is_some())?;
                    need("`answer`", l.answer.is_some())?;
                }
                TaskKind::InstructionFollowing => {
                    need("`question` (the prompt)", l.question.is_some())?;
                    need(
                        "`instruction_ids` and `instruction_kwargs`",
                        l.instruction_ids.is_some() && l.instruction_kwargs.is_some(),
                    )?;
                }
                TaskKind::Rubric => {
                    need("`question`", l.question.is_some())?;
                    need(
                        "a `rubric` column or a [rubric] section with criteria",
                        l.rubric.is_some()
                            || self.rubric.as_ref().is_some_and(|r| !r.criteria.is_empty()),
                    )?;
                }
            }
        }
        if self.task.subsets.is_empty() {
            if self.data.files.iter().any(|f| f.contains("{subset}")) {
                return fail("[data] files use {subset} but [task] has no subsets".into());
            }
        } else if self.data.subset_column.is_none()
            && (self.data.files.is_empty()
                || !self.data.files.iter().all(|f| f.contains("{subset}")))
        {
            return fail(
                "with subsets, every [data] file must contain {subset} or `subset_column` \
                 must be set"
                    .into(),
            );
        }
        Ok(())
    }

    /// The concrete tasks: one per subset, or one if there are none.
    pub fn expand(&self) -> Vec<TaskDef> {
        if self.task.subsets.is_empty() {
            return vec![TaskDef {
                name: self.task.name.clone(),
                subset: None,
                file: self.clone(),
            }];
        }
        self.task
            .subsets
            .iter()
            .map(|s| TaskDef {
                name: format!("{}/{}", self.task.name, s),
                subset: Some(s.clone()),
                file: self.clone(),
            })
            .collect()
    }
}

/// One concrete task (a task file, or one subset of it).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDef {
    pub name: String,
    pub subset: Option<String>,
    pub file: TaskFile,
}

impl TaskDef {
    /// The data files of this task under the user's data folder `root`.
    pub fn data_paths(&self, root: &Path) -> Vec<PathBuf> {
        self.file
            .data
            .files
            .iter()
            .map(|f| match &self.subset {
                Some(s) => root.join(f.replace("{subset}", s)),
                None => root.join(f),
            })
            .collect()
    }

    pub fn kind(&self) -> TaskKind {
        self.file.task.kind
    }
}
