//! Readers, the task-file format, templates, requests and the rubric judge.

use std::path::Path;

use dokja_tasks::prompt::render_template;
use dokja_tasks::records::{parse_csv, parse_json, parse_jsonl, read_records};
use dokja_tasks::rubric::{Criterion, JudgeParseError, parse_judgement};
use dokja_tasks::{Prompt, PromptMode, Role, TaskError, TaskFile};
use proptest::prelude::*;
use serde_json::json;

fn p() -> &'static Path {
    Path::new("data.x")
}

#[test]
fn csv_quoting_and_errors() {
    let text =
        "question,A,B,answer\n\"He said \"\"hi\"\", then, left\",x,\"multi\nline\",1\r\nq2,y,z,2\n";
    let rows = parse_csv(text, p()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["question"], json!("He said \"hi\", then, left"));
    assert_eq!(rows[0]["B"], json!("multi\nline"));
    assert_eq!(rows[1]["answer"], json!("2"));
    let e = parse_csv("a,b\n1,2\n3\n", p()).unwrap_err().to_string();
    assert!(e.contains("data.x") && e.contains("line 3"), "{e}");
    let e = parse_csv("a,b\n\"1,2\n", p()).unwrap_err().to_string();
    assert!(e.contains("never closed"), "{e}");
}

#[test]
fn json_shapes() {
    assert_eq!(parse_json(r#"[{"a": 1}, {"a": 2}]"#, p()).unwrap().len(), 2);
    assert_eq!(parse_json(r#"{"data": [{"a": 1}]}"#, p()).unwrap().len(), 1);
    let cols = parse_json(r#"{"q": {"0": "x", "1": "y"}, "a": {"0": 1, "1": 2}}"#, p()).unwrap();
    assert_eq!(cols[1]["q"], json!("y"));
    assert!(parse_json("[1, 2]", p()).is_err());
    let e = parse_jsonl("{\"a\": 1}\n\n{bad}\n", p())
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3"), "{e}");
    let e = read_records(Path::new("/nonexistent/x.jsonl"), None).unwrap_err();
    assert!(matches!(e, TaskError::Io { .. }));
    assert!(
        read_records(Path::new("x.xlsx"), None)
            .unwrap_err()
            .to_string()
            .contains("unknown file type")
    );
}

#[test]
fn csv_file_end_to_end_with_kmmlu_layout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/Math-test.csv"),
        "question,answer,A,B,C,D,Category,Human Accuracy\n\"1+1은?\",2,1,2,3,4,math,0.9\n\"2+2는?\",4,1,2,3,4,math,0.8\n",
    )
    .unwrap();
    let file = dokja_tasks::suites::shipped_file("kmmlu").unwrap().unwrap();
    let task = file
        .expand()
        .into_iter()
        .find(|t| t.subset.as_deref() == Some("Math"))
        .unwrap();
    assert_eq!(task.name, "kmmlu/Math");
    let items = task.load_items_from_root(dir.path()).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].id, "Math-test:0");
    let r = task
        .build_request(&items[1], &items, PromptMode::Chat)
        .unwrap();
    let Prompt::Chat { messages } = r.prompt else {
        panic!()
    };
    // One shot (the only other item) as a user/assistant pair, then the question.
    assert_eq!(messages.len(), 3);
    assert_eq!(
        (messages[0].role, messages[1].role),
        (Role::User, Role::Assistant)
    );
    assert_eq!(messages[1].content, " B");
    assert_eq!(
        messages[2].content,
        "2+2는?\nA. 1\nB. 2\nC. 3\nD. 4\n정답："
    );
    // Missing file: error names it.
    let other = file
        .expand()
        .into_iter()
        .find(|t| t.subset.as_deref() == Some("Law"))
        .unwrap();
    let e = other
        .load_items_from_root(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Law-test.csv"), "{e}");
}

const MINIMAL: &str = r#"
[task]
name = "t"
kind = "multiple_choice"

[[layout]]
question = "q"
choices = "opts"
answer = "gold"
answer_kind = "letter"
"#;

#[test]
fn task_file_validation_names_the_fault() {
    assert!(TaskFile::parse(MINIMAL, p()).is_ok());
    let typo = MINIMAL.replace("answer_kind", "answer_knd");
    let e = TaskFile::parse(&typo, Path::new("suites/t.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("suites/t.toml") && e.contains("answer_knd"),
        "{e}"
    );
    let no_choices = MINIMAL.replace("choices = \"opts\"\n", "");
    assert!(
        TaskFile::parse(&no_choices, p())
            .unwrap_err()
            .to_string()
            .contains("exactly one of")
    );
    let subset = MINIMAL.replace("name = \"t\"\n", "name = \"t\"\nsubsets = [\"x\"]\n");
    let e = TaskFile::parse(&subset, p()).unwrap_err().to_string();
    assert!(e.contains("{subset}"), "{e}");
}

#[test]
fn layout_mismatch_and_bad_answers_are_reported() {
    let file = TaskFile::parse(MINIMAL, p()).unwrap();
    let task = &file.expand()[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    std::fs::write(&path, "{\"question\": \"x\"}\n").unwrap();
    let e = task.load_items(&[&path]).unwrap_err().to_string();
    assert!(
        e.contains("match no layout") && e.contains("[q, opts, gold]"),
        "{e}"
    );
    std::fs::write(&path, "{\"q\": \"x\", \"opts\": [\"a\", \"b\"], \"gold\": \"A\"}\n{\"q\": \"y\", \"opts\": [\"a\", \"b\"], \"gold\": \"E\"}\n").unwrap();
    let e = task.load_items(&[&path]).unwrap_err().to_string();
    assert!(e.contains("record 1") && e.contains("out of range"), "{e}");
}

#[test]
fn templates() {
    let look = |f: &str| (f == "x").then(|| "1".to_string());
    assert_eq!(
        render_template("a {x} {{b}} {{{x}}}", &look).unwrap(),
        "a 1 {b} {1}"
    );
    assert!(render_template("{y}", &look).unwrap_err().contains("`y`"));
    assert!(render_template("{x", &look).is_err());
    assert!(render_template("x}", &look).is_err());
}

#[test]
fn completion_and_loglikelihood_requests_with_copa_connector() {
    let file = dokja_tasks::suites::shipped_file("kobest-copa")
        .unwrap()
        .unwrap();
    let task = &file.expand()[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copa.jsonl");
    std::fs::write(
        &path,
        "{\"premise\": \"물을 엎질렀다.\", \"question\": \"결과\", \"alternative_1\": \"바닥이 젖었다.\", \"alternative_2\": \"해가 떴다.\", \"label\": 0}\n\
         {\"premise\": \"길이 막혔다.\", \"question\": \"원인\", \"alternative_1\": \"사고가 났다.\", \"alternative_2\": \"비가 그쳤다.\", \"label\": 0}\n\
         {\"premise\": \"x\", \"question\": \"모름\", \"alternative_1\": \"a\", \"alternative_2\": \"b\", \"label\": 1}\n",
    )
    .unwrap();
    let e = task.load_items(&[&path]).unwrap_err().to_string();
    assert!(e.contains("record 2") && e.contains("모름"), "{e}");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.lines().take(2).collect::<Vec<_>>().join("\n")).unwrap();
    let items = task.load_items(&[&path]).unwrap();
    let r = task
        .build_request(&items[0], &items, PromptMode::Completion)
        .unwrap();
    assert_eq!(
        r.prompt,
        Prompt::Completion {
            text: "물을 엎질렀다. 그래서".into()
        }
    );
    assert_eq!(r.continuations, vec![" 바닥이 젖었다.", " 해가 떴다."]);
    let s = task.score_loglikelihoods(&items[1], &[-2.0, -1.0]).unwrap();
    assert_eq!(s.score, 0.0);
    assert!(task.score_loglikelihoods(&items[1], &[-2.0]).is_err());
}

#[test]
fn rubric_judge_prompt_and_parse() {
    let criteria = vec![
        Criterion {
            criterion: "Mentions the capital".into(),
            points: 2.0,
        },
        Criterion {
            criterion: "Cites a source".into(),
            points: 1.0,
        },
    ];
    let prompt = dokja_tasks::rubric::judge_prompt(None, "Q?", "A.", None, &criteria).unwrap();
    assert!(
        prompt.contains("1. (2 points) Mentions the capital") && prompt.contains("{\"scores\"")
    );
    let g = parse_judgement("Here: {\"scores\": [{\"criterion\": 1, \"points\": 2, \"reason\": \"ok\"}, {\"criterion\": \"2\", \"points\": 0}]}", &criteria).unwrap();
    assert_eq!((g.total, g.max), (2.0, 3.0));
    let g = parse_judgement("기준 1: 1점\n기준 2: 1점", &criteria).unwrap();
    assert!((g.fraction() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        parse_judgement(
            "{\"scores\": [{\"criterion\": 1, \"points\": 2}]}",
            &criteria
        ),
        Err(JudgeParseError::Missing(2))
    );
    assert!(matches!(
        parse_judgement("1: 3\n2: 0", &criteria),
        Err(JudgeParseError::OutOfRange { criterion: 1, .. })
    ));
    assert_eq!(
        parse_judgement("no idea", &criteria),
        Err(JudgeParseError::NoGrades)
    );
}

#[test]
fn rubric_task_from_a_rubric_column() {
    let toml = r#"
[task]
name = "essay"
kind = "rubric"
[[layout]]
question = "prompt"
rubric = "rubric"
reference = "ref"
"#;
    let file = TaskFile::parse(toml, p()).unwrap();
    let task = &file.expand()[0];
    let records = vec![json!({"prompt": "서울을 소개하시오.", "ref": "서울은 수도.", "rubric": [{"criterion": "수도임을 언급", "points": 1}]}).as_object().unwrap().clone()];
    let mut items = Vec::new();
    task.append_items(records, p(), &mut items).unwrap();
    let jp = task
        .judge_prompt(&items[0], "서울은 한국의 수도입니다.")
        .unwrap();
    assert!(jp.contains("서울은 수도.") && jp.contains("수도임을 언급"));
    assert_eq!(
        task.score_judgement(
            &items[0],
            "{\"scores\": [{\"criterion\": 1, \"points\": 1}]}"
        )
        .unwrap()
        .score,
        1.0
    );
    assert!(
        task.score_judgement(&items[0], "garbage")
            .unwrap()
            .extraction_failed
    );
    assert!(task.score_response(&items[0], "x").is_err());
}

proptest! {
    #[test]
    fn readers_never_panic(s in "(?s).{0,400}") {
        let _ = parse_csv(&s, p());
        let _ = parse_json(&s, p());
        let _ = parse_jsonl(&s, p());
        let _ = TaskFile::parse(&s, p());
        let _ = render_template(&s, &|_| Some(String::new()));
    }

    #[test]
    fn csv_round_trips_quoted_fields(cells in prop::collection::vec("[a-z,\"\n ]{0,8}", 1..6)) {
        let header: Vec<String> = (0..cells.len()).map(|i| format!("c{i}")).collect();
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let text = format!("{}\n{}\n", header.join(","), cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        let rows = parse_csv(&text, p()).unwrap();
        prop_assert_eq!(rows.len(), 1);
        for (h, c) in header.iter().zip(&cells) {
            prop_assert_eq!(rows[0][h].as_str().unwrap(), c.as_str());
        }
    }
}

#[test]
fn ifeval_ko_hugging_face_layout_with_null_kwargs() {
    let file = dokja_tasks::suites::shipped_file("ifeval-ko")
        .unwrap()
        .unwrap();
    let task = &file.expand()[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.jsonl");
    // The Hugging Face copies give every kwarg key, null when unused.
    let row = json!({
        "key": 7,
        "prompt": "서울을 소개하는 글을 3문장 이상 쓰고, 쉼표를 쓰지 마세요. 마지막은 \"감사합니다.\"로 끝내세요.",
        "instruction_id_list": ["length_constraints:number_sentences", "punctuation:no_comma", "startend:end_checker", "language:response_language"],
        "kwargs": [
            {"num_sentences": 3, "relation": "at least", "end_phrase": null, "language": null},
            {"num_sentences": null, "relation": null},
            {"end_phrase": "감사합니다."},
            {"language": "ko"}
        ]
    });
    std::fs::write(&path, format!("{row}\n")).unwrap();
    let items = task.load_items(&[&path]).unwrap();
    assert_eq!(items[0].id, "7");
    let good =
        "서울은 한국의 수도입니다. 한강이 도시를 가로지릅니다. 맛있는 음식이 많습니다. 감사합니다.";
    let s = task.score_response(&items[0], good).unwrap();
    assert_eq!(s.score, 1.0, "{:?}", s.metrics);
    let bad = "Seoul is the capital, and it is big. 감사합니다.";
    let s = task.score_response(&items[0], bad).unwrap();
    assert_eq!(s.score, 0.0);
    // Sentences (2 < 3), comma and language fail; the ending holds.
    assert!(
        (s.metrics["instruction_strict"] - 0.25).abs() < 1e-12,
        "{:?}",
        s.metrics
    );
}
