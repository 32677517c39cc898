//! Chat formatting without a template engine: the model's `tokenizer.chat_template` is
//! recognized as one of the formats dokja knows (only ChatML for now) and rendered by hand.

use dokja_tasks::{ChatMessage, Role};

/// A chat format recognized from a GGUF `tokenizer.chat_template`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role\ncontent<|im_end|>\n` per message, then `<|im_start|>assistant\n`.
    /// `default_system` is the system message the template inserts when the conversation
    /// does not start with one (SmolLM2's and Qwen's templates do).
    ChatMl { default_system: Option<String> },
}

impl ChatFormat {
    /// Recognizes `template`; `Err` names what was found when it is not a known format.
    pub fn detect(template: Option<&str>) -> Result<ChatFormat, String> {
        let Some(template) = template else {
            return Err("the model has no tokenizer.chat_template".into());
        };
        if template.contains("<|im_start|>") && template.contains("<|im_end|>") {
            return Ok(ChatFormat::ChatMl {
                default_system: chatml_default_system(template),
            });
        }
        let head: String = template.chars().take(80).collect();
        Err(format!(
            "unsupported chat template (only ChatML is rendered in-process); it starts {head:?}"
        ))
    }

    pub fn name(&self) -> &'static str {
        match self {
            ChatFormat::ChatMl { .. } => "chatml",
        }
    }

    /// The conversation as text, ending with the opening of the assistant's turn.
    pub fn render(&self, messages: &[ChatMessage]) -> String {
        match self {
            ChatFormat::ChatMl { default_system } => {
                let mut out = String::new();
                let starts_with_system = messages.first().is_some_and(|m| m.role == Role::System);
                if let (false, Some(system)) = (starts_with_system, default_system) {
                    out.push_str(&format!("<|im_start|>system\n{system}<|im_end|>\n"));
                }
                for m in messages {
                    let role = match m.role {
                        Role::System => "system",
                        Role::User => "user",
                        Role::Assistant => "assistant",
                    };
                    out.push_str(&format!("<|im_start|>{role}\n{}<|im_end|>\n", m.content));
                }
                out.push_str("<|im_start|>assistant\n");
                out
            }
        }
    }
}

/// The system text a ChatML template writes when the first message is not a system message:
/// the literal after `messages[0]['role'] != 'system'` between `<|im_start|>system\n` and
/// `<|im_end|>`.
fn chatml_default_system(template: &str) -> Option<String> {
    let cond = template
        .find("!= 'system'")
        .or_else(|| template.find("!= \"system\""))?;
    let rest = &template[cond..];
    let open = "<|im_start|>system\n";
    let start = rest.find(open)? + open.len();
    let len = rest[start..].find("<|im_end|>")?;
    let text = &rest[start..start + len];
    // Only a literal: a Jinja expression here means the text is computed.
    (!text.contains("{{") && !text.contains("{%")).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn msg(role: Role, content: &str) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn smollm2_template_is_chatml_with_its_default_system() {
        let f = ChatFormat::detect(Some(SMOLLM2)).unwrap();
        assert_eq!(
            f.render(&[msg(Role::User, "Hi")]),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            f.render(&[msg(Role::System, "Be brief."), msg(Role::User, "Hi")]),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn unknown_templates_are_refused_by_name() {
        let err = ChatFormat::detect(Some("{{ bos_token }}[INST] {{ m }} [/INST]")).unwrap_err();
        assert!(err.contains("unsupported chat template"), "{err}");
        assert!(ChatFormat::detect(None).is_err());
    }
}
