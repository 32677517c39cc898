//! Prompt templates, seeded few-shot selection and the neutral [`Request`] handed to backends.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};
use crate::items::{Item, Target, value_text};
use crate::spec::{Continuation, GenerationSpec, McMethod, PromptMode, TaskDef, TaskKind};

/// Most bytes a rendered prompt may have (templates cannot blow up: each field is inserted
/// once per placeholder, but a huge field times many placeholders still must stop somewhere).
pub const MAX_PROMPT_BYTES: usize = 8 << 20;

/// Substitutes `{field}` in `template` by `lookup(field)`; `{{`/`}}` are literal braces.
/// Errors name the first unknown field or an unclosed brace.
pub fn render_template(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let c = rest.as_bytes()[pos];
        let after = &rest[pos + 1..];
        if c == b'}' {
            if let Some(stripped) = after.strip_prefix('}') {
                out.push('}');
                rest = stripped;
                continue;
            }
            return Err(format!(
                "single `}}` at byte {}",
                template.len() - rest.len() + pos
            ));
        }
        if let Some(stripped) = after.strip_prefix('{') {
            out.push('{');
            rest = stripped;
            continue;
        }
        let Some(end) = after.find('}') else {
            return Err("`{` never closed".into());
        };
        let name = after[..end].trim();
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("unknown field `{name}`")),
        }
        if out.len() > MAX_PROMPT_BYTES {
            return Err(format!("rendered prompt exceeds {MAX_PROMPT_BYTES} bytes"));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A chat role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// The prompt of a request: chat messages or a completion text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Prompt {
    Chat { messages: Vec<ChatMessage> },
    Completion { text: String },
}

/// What a backend must do for one item, independent of any backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub task: String,
    pub item_id: String,
    pub prompt: Prompt,
    /// Log-likelihood scoring: score each continuation after the prompt (in chat mode, as the
    /// start of the assistant's reply). Empty when the model generates.
    pub continuations: Vec<String>,
    /// Generation settings when the model generates; `None` for log-likelihood requests.
    pub generation: Option<GenerationSpec>,
}

/// SplitMix64: a tiny documented PRNG, so few-shot draws are stable across crate versions.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0), by rejection so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// FNV-1a of a string, to derive a per-item seed from the item id.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl TaskDef {
    /// The template fields of `item`: its columns and derived fields, then the canonical
    /// `question`, `context`, `choices`, `labels`, `group`, `subset`, and (for few-shot
    /// targets) `gold`, `answer_label`, `answer_text`; then derived fields and columns.
    pub fn field(&self, item: &Item, name: &str) -> Option<String> {
        let p = &self.file.prompt;
        match name {
            "question" => return Some(item.question.clone()),
            "context" => return Some(item.context.clone().unwrap_or_default()),
            "subset" => return Some(self.subset.clone().unwrap_or_default()),
            "group" => return Some(item.group.clone().unwrap_or_default()),
            "choices" => {
                let lines: Vec<String> = item
                    .choices()
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        render_template(&p.choice_format, &|f| match f {
                            "label" => Some(p.labels.label(i)),
                            "text" => Some(text.clone()),
                            _ => None,
                        })
                        .unwrap_or_default()
                    })
                    .collect();
                return Some(lines.join("\n"));
            }
            "labels" => {
                let n = item.choices().len();
                return Some(
                    (0..n)
                        .map(|i| p.labels.label(i))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            "answer_label" | "answer_text" | "gold" => {
                return Some(match (&item.target, name) {
                    (Target::Choice { correct, .. }, "answer_label") => p.labels.label(*correct),
                    (Target::Choice { choices, correct }, "answer_text") => {
                        choices[*correct].clone()
                    }
                    (Target::Choice { choices, correct }, _) => {
                        format!("{}. {}", p.labels.label(*correct), choices[*correct])
                    }
                    (Target::Answer { answer }, _) => answer.clone(),
                    (Target::Rubric { reference, .. }, _) => reference.clone().unwrap_or_default(),
                    (Target::Instructions { .. }, _) => String::new(),
                });
            }
            _ => {}
        }
        item.fields.get(name).map(value_text)
    }

    fn render(&self, template: &str, item: &Item) -> Result<String> {
        render_template(template, &|f| self.field(item, f)).map_err(|message| TaskError::Template {
            task: self.name.clone(),
            item: item.id.clone(),
            message,
        })
    }

    /// The item's prompt text (without few-shot examples).
    pub fn render_prompt(&self, item: &Item) -> Result<String> {
        self.render(&self.file.prompt.template, item)
    }

    /// Whether this task's requests ask the model to generate (vs log-likelihood scoring).
    pub fn generates(&self) -> bool {
        !(self.kind() == TaskKind::MultipleChoice
            && self.file.scoring.method == McMethod::Loglikelihood)
    }

    /// Seeded few-shot examples for `item` from `pool` (never the item itself, matched by id;
    /// only its group when the task asks). The draw depends on the seed and the item id only,
    /// so it does not change when items are run in another order or a run is resumed.
    pub fn select_fewshot<'a>(&self, item: &Item, pool: &'a [Item]) -> Vec<&'a Item> {
        let same_group = self.file.fewshot.same_group;
        self.draw_fewshot(
            item,
            pool.iter().filter(|c| !same_group || c.group == item.group),
        )
    }

    /// The seeded draw: rank candidates by a hash of (seed, target id, candidate id) and keep
    /// the `n` smallest, a uniform sample that depends on neither the pool's order nor the
    /// run's progress.
    fn draw_fewshot<'a>(
        &self,
        item: &Item,
        candidates: impl Iterator<Item = &'a Item>,
    ) -> Vec<&'a Item> {
        let n = self.file.fewshot.n;
        if n == 0 {
            return Vec::new();
        }
        let base = self.file.fewshot.seed ^ fnv1a(&item.id);
        let mut ranked: Vec<(u64, &Item)> = candidates
            .filter(|c| c.id != item.id)
            .map(|c| {
                (
                    SplitMix64::new(base ^ fnv1a(&c.id).rotate_left(17)).next_u64(),
                    c,
                )
            })
            .collect();
        let order =
            |a: &(u64, &Item), b: &(u64, &Item)| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id));
        if ranked.len() > n {
            ranked.select_nth_unstable_by(n, order);
            ranked.truncate(n);
        }
        ranked.sort_by(order);
        ranked.into_iter().map(|(_, c)| c).collect()
    }

    /// Builds the request for `item`, with few-shot examples drawn from `pool`.
    pub fn build_request(&self, item: &Item, pool: &[Item], mode: PromptMode) -> Result<Request> {
        self.build_request_with_shots(item, &self.select_fewshot(item, pool), mode)
    }

    fn build_request_with_shots(
        &self,
        item: &Item,
        fewshot: &[&Item],
        mode: PromptMode,
    ) -> Result<Request> {
        let p = &self.file.prompt;
        let generates = self.generates();
        let mut prompt_text = self.render_prompt(item)?;
        if generates && let Some(suffix) = &p.generation_suffix {
            prompt_text.push_str(&self.render(suffix, item)?);
        }
        let mut shots = Vec::new();
        for shot in fewshot {
            let mut q = self.render_prompt(shot)?;
            if generates && let Some(suffix) = &p.generation_suffix {
                q.push_str(&self.render(suffix, shot)?);
            }
            let a = self.render(&p.target_template, shot)?;
            shots.push((q, a));
        }
        let prompt = match mode {
            PromptMode::Chat => {
                let mut messages = Vec::new();
                if let Some(system) = &p.system {
                    messages.push(ChatMessage {
                        role: Role::System,
                        content: system.clone(),
                    });
                }
                for (q, a) in shots {
                    messages.push(ChatMessage {
                        role: Role::User,
                        content: q,
                    });
                    messages.push(ChatMessage {
                        role: Role::Assistant,
                        content: a,
                    });
                }
                messages.push(ChatMessage {
                    role: Role::User,
                    content: prompt_text,
                });
                Prompt::Chat { messages }
            }
            PromptMode::Completion => {
                let mut parts = Vec::new();
                if let Some(system) = &p.system {
                    parts.push(system.clone());
                }
                for (q, a) in shots {
                    parts.push(format!("{q}{a}"));
                }
                parts.push(prompt_text);
                Prompt::Completion {
                    text: parts.join(&p.shot_separator),
                }
            }
        };
        let continuations = if generates {
            Vec::new()
        } else {
            self.continuations(item)
        };
        Ok(Request {
            task: self.name.clone(),
            item_id: item.id.clone(),
            prompt,
            continuations,
            generation: generates.then(|| self.file.generation.clone()),
        })
    }

    /// The log-likelihood continuations of a multiple-choice item, in choice order.
    pub fn continuations(&self, item: &Item) -> Vec<String> {
        let p = &self.file.prompt;
        item.choices()
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let body = match self.file.scoring.continuation {
                    Continuation::Label => p.labels.label(i),
                    Continuation::Text => text.clone(),
                };
                format!("{}{}", self.file.scoring.continuation_prefix, body)
            })
            .collect()
    }

    /// Requests for all `items`, few-shot examples drawn from the same list.
    pub fn build_requests(&self, items: &[Item], mode: PromptMode) -> Result<Vec<Request>> {
        // Index the pool by group once, so same-group draws do not scan every item per item.
        let mut by_group: std::collections::HashMap<Option<&str>, Vec<&Item>> =
            std::collections::HashMap::new();
        if self.file.fewshot.same_group {
            for it in items {
                by_group.entry(it.group.as_deref()).or_default().push(it);
            }
        }
        items
            .iter()
            .map(|item| {
                let shots = if self.file.fewshot.same_group {
                    let pool = by_group
                        .get(&item.group.as_deref())
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    self.draw_fewshot(item, pool.iter().copied())
                } else {
                    self.draw_fewshot(item, items.iter())
                };
                self.build_request_with_shots(item, &shots, mode)
            })
            .collect()
    }
}
