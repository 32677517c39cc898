//! The shipped suites against the real benchmark files in `shared/data/benchmarks` (see its
//! SOURCES.md): every item loads, the answer key maps to the right choice, requests build, and
//! extraction / checkers score hand-written responses (right and wrong, English and Korean).

use std::path::{Path, PathBuf};

use dokja_tasks::items::Target;
use dokja_tasks::suites::shipped_file;
use dokja_tasks::{Item, Prompt, PromptMode, TaskDef};

/// `$DOKJA_BENCHMARKS`, else `shared/data/benchmarks` beside the repository.
fn benchmarks() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOKJA_BENCHMARKS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/benchmarks"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "benchmark data not found at {} (set DOKJA_BENCHMARKS to shared/data/benchmarks)",
        dir.display()
    );
    if std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_some_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

fn task(file: &str, subset: Option<&str>) -> TaskDef {
    let f = shipped_file(file).expect("shipped").expect("parses");
    f.expand()
        .into_iter()
        .find(|t| t.subset.as_deref() == subset)
        .expect("subset exists")
}

fn correct(item: &Item) -> (usize, &[String]) {
    match &item.target {
        Target::Choice { choices, correct } => (*correct, choices),
        t => panic!("not a choice item: {t:?}"),
    }
}

fn completion_text(t: &TaskDef, items: &[Item], i: usize) -> String {
    match t
        .build_request(&items[i], items, PromptMode::Completion)
        .unwrap()
        .prompt
    {
        Prompt::Completion { text } => text,
        p => panic!("{p:?}"),
    }
}

#[test]
fn kmmlu_criminal_law_answer_key_is_one_based() {
    let Some(root) = benchmarks() else { return };
    let t = task("kmmlu", Some("Criminal-Law"));
    let items = t
        .load_items(&[root.join("kmmlu/criminal_law_test.json")])
        .unwrap();
    assert_eq!(items.len(), 200);
    // First item: answer 1 -> choice A, whose text starts with "참여 관찰 연구".
    let (c, choices) = correct(&items[0]);
    assert_eq!(c, 0);
    assert!(choices[0].starts_with("참여 관찰 연구"));
    assert!(items.iter().all(|i| i.choices().len() == 4));
    let requests = t.build_requests(&items, PromptMode::Completion).unwrap();
    assert_eq!(requests[0].continuations, vec![" A", " B", " C", " D"]);
    assert!(requests[0].generation.is_none());
    let text = completion_text(&t, &items, 0);
    // Five shots, each ending in its answer label, then the item.
    assert_eq!(text.matches("정답：").count(), 6);
    assert!(text.ends_with(&format!("D. {}\n정답：", choices[3])));
    assert!(
        text.contains("\n정답： A\n\n")
            || text.contains("\n정답： B\n\n")
            || text.contains("\n정답： C\n\n")
            || text.contains("\n정답： D\n\n")
    );
    assert!(text.contains(&format!("A. {}", choices[0])));
    // The 5 shots never include the item itself and do not depend on the order of items.
    let mut reversed = items.clone();
    reversed.reverse();
    let again = match t
        .build_request(&items[0], &reversed, PromptMode::Completion)
        .unwrap()
        .prompt
    {
        Prompt::Completion { text } => text,
        p => panic!("{p:?}"),
    };
    assert_eq!(text, again);
    // Log-likelihood scoring: the highest continuation wins.
    let right = t
        .score_loglikelihoods(&items[0], &[-1.0, -3.0, -2.0, -4.0])
        .unwrap();
    let wrong = t
        .score_loglikelihoods(&items[0], &[-5.0, -3.0, -2.0, -4.0])
        .unwrap();
    assert_eq!((right.score, wrong.score), (1.0, 0.0));
    // Generated Korean answers on the same item (gold: A, the first choice).
    for (response, score) in [
        ("정답은 1번입니다.", 1.0),
        ("정답: A", 1.0),
        ("①", 1.0),
        ("답은 (B)", 0.0),
        ("4번이 옳다. 정답: D", 0.0),
    ] {
        let s = t.score_response(&items[0], response).unwrap();
        assert_eq!((s.score, s.extraction_failed), (score, false), "{response}");
    }
}

#[test]
fn click_answer_text_maps_to_choice_index() {
    let Some(root) = benchmarks() else { return };
    let t = task("click", None);
    let items = t.load_items_from_root(&root.join("click")).unwrap();
    assert_eq!(items.len(), 1995);
    for item in &items {
        let (c, choices) = correct(item);
        assert_eq!(item.fields["answer"].as_str().unwrap().trim(), choices[c]);
        assert!(item.group.is_some());
    }
    let requests = t.build_requests(&items, PromptMode::Completion).unwrap();
    assert!(
        requests
            .iter()
            .zip(&items)
            .all(|(r, i)| r.continuations.len() == i.choices().len())
    );
    let law = items.iter().find(|i| i.id == "PSAT_17_1").unwrap();
    assert_eq!(correct(law).0, 0);
    assert_eq!(law.group.as_deref(), Some("Law_PSAT"));
    let r = t.build_request(law, &items, PromptMode::Chat).unwrap();
    let Prompt::Chat { messages } = &r.prompt else {
        panic!()
    };
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0]
            .content
            .contains("헌법재판소에 대한 설명으로 옳은 것은?")
    );
    assert!(messages[0].content.contains("A. 법관의 자격을"));
    // Generated Korean answers.
    for (response, expect) in [
        ("정답은 A입니다.", Some(1.0)),
        ("정답: ①", Some(1.0)),
        ("1번", Some(1.0)),
        (
            "헌법재판소 재판관은 탄핵에 의해서만 파면될 수 있다.",
            Some(0.0),
        ),
        ("정답은 3번입니다.", Some(0.0)),
        ("잘 모르겠습니다.", None),
    ] {
        let s = t.score_response(law, response).unwrap();
        match expect {
            Some(v) => assert_eq!((s.score, s.extraction_failed), (v, false), "{response}"),
            None => assert!(s.extraction_failed, "{response}"),
        }
    }
}

#[test]
fn mmlu_jsonl_layout_skips_header_rows_and_maps_letters() {
    let Some(root) = benchmarks() else { return };
    let t = task("mmlu", None);
    let items = t.load_items(&[root.join("mmlu/test.jsonl")]).unwrap();
    assert_eq!(items.len(), 14_042);
    assert!(items.iter().all(|i| i.question != "question"));
    // First row: correct_answer "D" on a moral-scenarios item.
    assert_eq!(correct(&items[0]).0, 3);
    assert_eq!(items[0].group.as_deref(), Some("moral scenarios"));
    let requests = t.build_requests(&items, PromptMode::Chat).unwrap();
    assert_eq!(requests.len(), items.len());
    assert!(
        requests
            .iter()
            .all(|r| r.continuations == [" A", " B", " C", " D"])
    );
    // Batch and single-item few-shot draws agree.
    assert_eq!(
        requests[0],
        t.build_request(&items[0], &items, PromptMode::Chat)
            .unwrap()
    );
    let groups: std::collections::BTreeSet<_> =
        items.iter().map(|i| i.group.clone().unwrap()).collect();
    assert_eq!(groups.len(), 57);
    // Few-shot examples come from the same subject.
    let text = completion_text(&t, &items, 0);
    assert_eq!(text.matches("about moral scenarios").count(), 6);
    for (response, score) in [
        ("Answer: D", 1.0),
        ("The answer is (D).", 1.0),
        ("D. Not wrong, Not wrong", 1.0),
        ("Not wrong, Not wrong", 1.0),
        ("(A)", 0.0),
        ("I think the answer is B because", 0.0),
    ] {
        let s = t.score_response(&items[0], response).unwrap();
        assert_eq!((s.score, s.extraction_failed), (score, false), "{response}");
    }
}

#[test]
fn gsm8k_answers_after_hashes_and_numeric_extraction() {
    let Some(root) = benchmarks() else { return };
    let t = task("gsm8k", None);
    let items = t.load_items_from_root(&root.join("gsm8k")).unwrap();
    assert_eq!(items.len(), 1319);
    let Target::Answer { answer } = &items[0].target else {
        panic!()
    };
    assert_eq!(answer, "18");
    assert!(items.iter().all(|i| matches!(&i.target, Target::Answer { answer } if dokja_tasks::extract::parse_number(answer).is_some())));
    let requests = t.build_requests(&items, PromptMode::Chat).unwrap();
    assert!(
        requests
            .iter()
            .all(|r| matches!(&r.prompt, Prompt::Chat { messages } if messages.len() == 17))
    );
    // Eight worked examples, each ending in "#### n", then the question.
    let text = completion_text(&t, &items, 0);
    assert_eq!(text.matches("\n#### ").count(), 8);
    assert!(text.ends_with("Answer: Solve step by step, then give the final number on its own line as \"#### <number>\"."));
    for (response, score) in [
        ("She sells 9 eggs, 9 * 2 = 18.\n#### 18", 1.0),
        ("So she makes $18 every day.", 1.0),
        ("The answer is \\boxed{18}.", 1.0),
        ("따라서 정답은 18달러입니다.", 1.0),
        ("#### 18.00", 1.0),
        ("She makes 9 * 2 = 18, no wait, 20.", 0.0),
        ("#### 1,800", 0.0),
    ] {
        let s = t.score_response(&items[0], response).unwrap();
        assert_eq!((s.score, s.extraction_failed), (score, false), "{response}");
    }
    assert!(
        t.score_response(&items[0], "I don't know.")
            .unwrap()
            .extraction_failed
    );
}

#[test]
fn ifeval_all_prompts_load_and_checkers_build() {
    let Some(root) = benchmarks() else { return };
    let t = task("ifeval", None);
    let items = t.load_items_from_root(&root.join("ifeval")).unwrap();
    assert_eq!(items.len(), 540);
    // Every instruction of every prompt has a checker (ids known, kwargs well-formed).
    for item in &items {
        let s = t.score_response(item, "a response").unwrap();
        assert!(s.metrics["instructions"] >= 1.0);
    }
    // key 1000: no commas, 3+ highlighted sections, 300+ words.
    let item = items.iter().find(|i| i.id == "1000").unwrap();
    let good = format!(
        "*Early life* {}\n*Reign* text\n*Legacy* text",
        "word ".repeat(300)
    );
    let s = t.score_response(item, &good).unwrap();
    assert_eq!(s.score, 1.0, "{:?}", s.metrics);
    let bad = format!("*Early life*, {}", "word ".repeat(300));
    let s = t.score_response(item, &bad).unwrap();
    assert_eq!(s.score, 0.0);
    assert!((s.metrics["instruction_strict"] - 1.0 / 3.0).abs() < 1e-12);
    let requests = t.build_requests(&items, PromptMode::Chat).unwrap();
    assert!(
        requests
            .iter()
            .all(|r| r.generation.is_some() && r.continuations.is_empty())
    );
}

#[test]
fn every_shipped_suite_parses_and_expands() {
    let files = dokja_tasks::suites::shipped().unwrap();
    assert_eq!(files.len(), dokja_tasks::suites::SUITE_FILES.len());
    let kmmlu = files.iter().find(|f| f.task.name == "kmmlu").unwrap();
    assert_eq!(kmmlu.expand().len(), 45);
    let names: Vec<String> = files
        .iter()
        .flat_map(|f| f.expand())
        .map(|t| t.name)
        .collect();
    for want in [
        "click",
        "kmmlu/Criminal-Law",
        "haerae/history",
        "kobest-copa",
        "hrm8k/KSM",
        "kmmlu-pro",
        "mmlu",
        "mmlu-pro",
        "gsm8k",
        "ifeval",
        "ifeval-ko",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing");
    }
}
