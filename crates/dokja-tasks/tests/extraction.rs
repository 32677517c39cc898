//! Answer extraction on hand-written responses, English and Korean, right and wrong.

use dokja_tasks::extract::{
    ExtractionRule, answers_match, extract_answer, extract_choice, parse_number,
};
use proptest::prelude::*;

fn choices(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn choice_forms() {
    let c = choices(&["Paris", "London", "Berlin", "Madrid"]);
    let cases: &[(&str, Option<usize>)] = &[
        ("B", Some(1)),
        ("(B)", Some(1)),
        ("B.", Some(1)),
        ("b", Some(1)),
        ("**C**", Some(2)),
        ("Answer: D", Some(3)),
        ("The answer is (A).", Some(0)),
        (
            "Let me think. Paris is in France, London is in the UK... The correct answer is C",
            Some(2),
        ),
        ("Final answer: B\n\nExplanation: because ...", Some(1)),
        ("답: B", Some(1)),
        ("정답은 3번입니다.", Some(2)),
        ("정답: ②", Some(1)),
        ("3번", Some(2)),
        ("②", Some(1)),
        ("④번이 정답입니다", Some(3)),
        ("정답은 (4)", Some(3)),
        ("Ｃ", Some(2)),
        ("B. London", Some(1)),
        ("London", Some(1)),
        ("I would say london.", Some(1)),
        ("The capital is Madrid.", Some(3)),
        (
            "Answer: Because Paris and London are both capitals, I cannot choose.",
            None,
        ),
        ("I don't know", None),
        ("Paris or London", None),
        ("정답은 7번", None),
        ("", None),
    ];
    for (response, want) in cases {
        let got = extract_choice(response, &c).map(|x| x.index);
        assert_eq!(got, *want, "response {response:?}");
    }
}

#[test]
fn statement_beats_earlier_mentions_and_the_last_statement_wins() {
    let c = choices(&["1", "2", "3", "4"]);
    // Choices that are numbers: "정답은 3" names the choice whose text is 3.
    assert_eq!(extract_choice("정답은 3", &c).unwrap().index, 2);
    let c = choices(&["10", "20", "30", "40"]);
    assert_eq!(extract_choice("정답은 2번", &c).unwrap().index, 1);
    let c = choices(&["a", "b", "c", "d"]);
    let x = extract_choice(
        "At first the answer is A, but rechecking, the answer is D.",
        &c,
    )
    .unwrap();
    assert_eq!((x.index, x.rule), (3, ExtractionRule::AnswerStatement));
}

#[test]
fn nested_choice_texts() {
    let c = choices(&["Paris", "Paris, Texas", "Lyon"]);
    assert_eq!(extract_choice("It is Paris, Texas.", &c).unwrap().index, 1);
    assert_eq!(extract_choice("paris", &c).unwrap().index, 0);
}

#[test]
fn numeric_answers() {
    let cases: &[(&str, &str, bool)] = &[
        ("Janet makes 9 * 2 = $18.\n#### 18", "18", true),
        ("#### 1,234", "1234", true),
        ("The answer is 1,234.", "1234", true),
        ("The answer is \\boxed{\\frac{3}{4}}", "0.75", true),
        ("So x = \\boxed{0.75}", "3/4", true),
        ("정답은 42개입니다.", "42", true),
        ("따라서 답: 1,200원", "1200", true),
        ("Total: 50%", "50", true),
        ("She pays $5.00 in total", "5", true),
        ("The answer is -3.", "-3", true),
        ("The answer is 17.", "18", false),
        ("#### 18\nWait, actually it is 20.", "18", true),
        ("\\boxed{x^2+1}", "x^{2}+1", false),
        ("\\boxed{\\left(1, 2\\right)}", "(1,2)", true),
    ];
    for (response, gold, ok) in cases {
        let (got, _) =
            extract_answer(response).unwrap_or_else(|| panic!("nothing in {response:?}"));
        assert_eq!(
            answers_match(&got, gold),
            *ok,
            "{response:?} -> {got:?} vs {gold:?}"
        );
    }
    assert!(extract_answer("I cannot solve this.").is_none());
}

#[test]
fn number_forms() {
    assert_eq!(parse_number("1,234,567"), Some(1_234_567.0));
    assert_eq!(parse_number("$18"), Some(18.0));
    assert_eq!(parse_number("18 dollars"), Some(18.0));
    assert_eq!(parse_number("30개"), Some(30.0));
    assert_eq!(parse_number("\\dfrac{1}{8}"), Some(0.125));
    assert_eq!(parse_number("12,34"), None);
    assert_eq!(parse_number("1/0"), None);
    assert_eq!(parse_number("x + 1"), None);
}

proptest! {
    #[test]
    fn extraction_never_panics(s in ".{0,300}", n in 2usize..12) {
        let c: Vec<String> = (0..n).map(|i| format!("choice {i}")).collect();
        if let Some(x) = extract_choice(&s, &c) {
            prop_assert!(x.index < n);
        }
        let _ = extract_answer(&s);
        let _ = parse_number(&s);
    }

    #[test]
    fn a_stated_label_is_found(i in 0usize..4, pre in "[a-z ]{0,40}") {
        let c = choices(&["w", "x", "y", "z"]);
        let label = char::from(b'A' + i as u8);
        let r = format!("{pre}\n정답: {label}");
        prop_assert_eq!(extract_choice(&r, &c).map(|x| x.index), Some(i));
        let r = format!("{pre}\nThe answer is ({label})");
        prop_assert_eq!(extract_choice(&r, &c).map(|x| x.index), Some(i));
    }
}
