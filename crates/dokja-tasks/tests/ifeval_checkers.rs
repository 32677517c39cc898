//! Each IFEval checker on responses that follow and break the instruction, English and Korean
//! (IFEval-Ko uses the same ids and arguments).

use dokja_tasks::ifeval::{
    Checker, INSTRUCTION_IDS, count_words, evaluate, language_matches, split_into_sentences,
};
use serde_json::{Map, Value, json};

fn kw(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn check(id: &str, args: Value, response: &str) -> bool {
    Checker::new(id, &kw(args), "the prompt")
        .unwrap()
        .check(response)
}

#[test]
fn every_id_has_a_checker_and_unknown_ids_fail() {
    let args = json!({
        "keywords": ["a"], "keyword": "a", "frequency": 1, "relation": "at least",
        "forbidden_words": ["a"], "letter": "a", "let_frequency": 1, "let_relation": "at least",
        "language": "en", "num_sentences": 1, "num_paragraphs": 1, "num_words": 1,
        "nth_paragraph": 1, "first_word": "a", "num_placeholders": 1, "postscript_marker": "P.S.",
        "num_bullets": 1, "num_highlights": 1, "section_spliter": "Section", "num_sections": 1,
        "prompt_to_repeat": "x", "end_phrase": "x", "capital_frequency": 1, "capital_relation": "at least"
    });
    for id in INSTRUCTION_IDS {
        assert!(Checker::new(id, &kw(args.clone()), "").is_ok(), "{id}");
    }
    assert!(Checker::new("keywords:nonsense", &Map::new(), "").is_err());
    let e = Checker::new(
        "length_constraints:number_words",
        &kw(json!({"num_words": 5})),
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("relation"), "{e}");
    assert!(
        Checker::new(
            "length_constraints:number_words",
            &kw(json!({"num_words": 5, "relation": "about"})),
            ""
        )
        .is_err()
    );
}

#[test]
fn keywords() {
    assert!(check(
        "keywords:existence",
        json!({"keywords": ["Seoul", "한강"]}),
        "seoul has the 한강 river"
    ));
    assert!(!check(
        "keywords:existence",
        json!({"keywords": ["Seoul", "한강"]}),
        "Seoul has a river"
    ));
    assert!(check(
        "keywords:frequency",
        json!({"keyword": "서울", "frequency": 2, "relation": "at least"}),
        "서울은 크다. 서울에 산다."
    ));
    assert!(!check(
        "keywords:frequency",
        json!({"keyword": "서울", "frequency": 2, "relation": "less than"}),
        "서울은 크다. 서울에 산다."
    ));
    assert!(check(
        "keywords:forbidden_words",
        json!({"forbidden_words": ["cat"]}),
        "A category of dogs."
    ));
    assert!(!check(
        "keywords:forbidden_words",
        json!({"forbidden_words": ["cat"]}),
        "The Cat sat."
    ));
    assert!(check(
        "keywords:letter_frequency",
        json!({"letter": "A", "let_frequency": 3, "let_relation": "at least"}),
        "banana"
    ));
    assert!(!check(
        "keywords:letter_frequency",
        json!({"letter": "a", "let_frequency": 3, "let_relation": "less than"}),
        "bAnana"
    ));
    assert!(check(
        "keywords:letter_frequency",
        json!({"letter": "다", "let_frequency": 2, "let_relation": "at least"}),
        "했다. 간다."
    ));
}

#[test]
fn language() {
    assert!(language_matches(
        "안녕하세요. 오늘은 날씨가 좋습니다.",
        "ko"
    ));
    assert!(!language_matches("Hello, the weather is nice today.", "ko"));
    assert!(language_matches("Hello, the weather is nice today.", "en"));
    assert!(!language_matches(
        "안녕하세요. 오늘은 날씨가 좋습니다.",
        "en"
    ));
    assert!(language_matches(
        "Der Hund ist nicht mit der Katze auf dem Sofa.",
        "de"
    ));
    assert!(!language_matches(
        "The dog is on the sofa with the cat.",
        "de"
    ));
    assert!(language_matches("Привет, как дела?", "ru"));
    assert!(language_matches("これは日本語の文章です。", "ja"));
    assert!(check(
        "language:response_language",
        json!({"language": "ko"}),
        "한국어로 답합니다. AI 모델은 GPU에서 돕니다."
    ));
}

#[test]
fn lengths() {
    assert_eq!(count_words("하늘이 참 맑다. It's fine."), 6);
    assert_eq!(
        split_into_sentences("Dr. Smith went home. He slept! Did he? Yes.").len(),
        4
    );
    assert_eq!(
        split_into_sentences("오늘은 맑다. 내일은 비가 온다. 모레는?").len(),
        3
    );
    assert_eq!(
        split_into_sentences("It costs 3.5 dollars at example.com today.").len(),
        1
    );
    assert!(check(
        "length_constraints:number_sentences",
        json!({"num_sentences": 3, "relation": "less than"}),
        "하나. 둘."
    ));
    assert!(!check(
        "length_constraints:number_sentences",
        json!({"num_sentences": 3, "relation": "at least"}),
        "하나. 둘."
    ));
    assert!(check(
        "length_constraints:number_words",
        json!({"num_words": 3, "relation": "at least"}),
        "나는 학교에 간다"
    ));
    assert!(!check(
        "length_constraints:number_words",
        json!({"num_words": 3, "relation": "less than"}),
        "나는 학교에 간다"
    ));
    let p = json!({"num_paragraphs": 3});
    assert!(check(
        "length_constraints:number_paragraphs",
        p.clone(),
        "one\n***\ntwo\n***\nthree"
    ));
    assert!(check(
        "length_constraints:number_paragraphs",
        p.clone(),
        "***\none\n***\ntwo\n***\nthree\n***"
    ));
    assert!(!check(
        "length_constraints:number_paragraphs",
        p.clone(),
        "one\n***\n\n***\nthree"
    ));
    assert!(!check(
        "length_constraints:number_paragraphs",
        p,
        "one\n***\ntwo"
    ));
    let nth = json!({"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "However"});
    assert!(check(
        "length_constraints:nth_paragraph_first_word",
        nth.clone(),
        "First one.\n\n\"However, second.\""
    ));
    assert!(!check(
        "length_constraints:nth_paragraph_first_word",
        nth.clone(),
        "First one.\n\nBut second."
    ));
    assert!(!check(
        "length_constraints:nth_paragraph_first_word",
        nth,
        "First one.\n\nHowever x.\n\nThird."
    ));
    let ko = json!({"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "먼저"});
    assert!(check(
        "length_constraints:nth_paragraph_first_word",
        ko,
        "먼저, 시작합니다.\n\n다음입니다."
    ));
}

#[test]
fn content_and_format() {
    assert!(check(
        "detectable_content:number_placeholders",
        json!({"num_placeholders": 2}),
        "[이름] lives at [address]"
    ));
    assert!(!check(
        "detectable_content:number_placeholders",
        json!({"num_placeholders": 2}),
        "[name] only"
    ));
    assert!(check(
        "detectable_content:postscript",
        json!({"postscript_marker": "P.S."}),
        "본문입니다.\n\nP.S. 감사합니다."
    ));
    assert!(check(
        "detectable_content:postscript",
        json!({"postscript_marker": "P.P.S"}),
        "Body.\nP.P.S more"
    ));
    assert!(!check(
        "detectable_content:postscript",
        json!({"postscript_marker": "P.S."}),
        "No postscript here."
    ));
    assert!(check(
        "detectable_format:number_bullet_lists",
        json!({"num_bullets": 2}),
        "* 하나\n- 둘\n"
    ));
    assert!(!check(
        "detectable_format:number_bullet_lists",
        json!({"num_bullets": 2}),
        "* one\n* two\n* three"
    ));
    assert!(check(
        "detectable_format:constrained_response",
        json!({}),
        "My answer is yes."
    ));
    assert!(!check(
        "detectable_format:constrained_response",
        json!({}),
        "Yes."
    ));
    assert!(check(
        "detectable_format:number_highlighted_sections",
        json!({"num_highlights": 2}),
        "*첫째* and **둘째**"
    ));
    assert!(!check(
        "detectable_format:number_highlighted_sections",
        json!({"num_highlights": 2}),
        "*one* and ** **"
    ));
    let sec = json!({"section_spliter": "SECTION", "num_sections": 2});
    assert!(check(
        "detectable_format:multiple_sections",
        sec.clone(),
        "SECTION 1\nintro\nSECTION 2\nbody"
    ));
    assert!(!check(
        "detectable_format:multiple_sections",
        sec,
        "SECTION 1\nall in one"
    ));
    assert!(check(
        "detectable_format:json_format",
        json!({}),
        "```json\n{\"a\": 1}\n```"
    ));
    assert!(!check("detectable_format:json_format", json!({}), "{a: 1}"));
    assert!(check(
        "detectable_format:title",
        json!({}),
        "<<봄의 노래>>\n본문"
    ));
    assert!(!check(
        "detectable_format:title",
        json!({}),
        "<< >> no title"
    ));
}

#[test]
fn combination_startend_case_punctuation() {
    assert!(check(
        "combination:two_responses",
        json!({}),
        "첫 번째 답\n******\n두 번째 답"
    ));
    assert!(!check(
        "combination:two_responses",
        json!({}),
        "same\n******\nsame"
    ));
    let rp = json!({"prompt_to_repeat": "Write a poem."});
    assert!(check(
        "combination:repeat_prompt",
        rp.clone(),
        "write a poem. Roses are red."
    ));
    assert!(!check("combination:repeat_prompt", rp, "Roses are red."));
    let end = json!({"end_phrase": "더 궁금한 점이 있나요?"});
    assert!(check(
        "startend:end_checker",
        end.clone(),
        "답변입니다. 더 궁금한 점이 있나요?\n"
    ));
    assert!(!check(
        "startend:end_checker",
        end,
        "더 궁금한 점이 있나요? 끝."
    ));
    assert!(check("startend:quotation", json!({}), " \"인용된 답\" "));
    assert!(!check("startend:quotation", json!({}), "\"unbalanced"));
    let caps = json!({"capital_frequency": 2, "capital_relation": "at least"});
    assert!(check(
        "change_case:capital_word_frequency",
        caps.clone(),
        "NASA and the ESA"
    ));
    assert!(!check(
        "change_case:capital_word_frequency",
        caps,
        "Nasa and the Esa"
    ));
    assert!(check(
        "change_case:english_capital",
        json!({}),
        "THIS IS THE ANSWER IN ENGLISH."
    ));
    assert!(!check(
        "change_case:english_capital",
        json!({}),
        "THIS is the answer."
    ));
    assert!(check(
        "change_case:english_lowercase",
        json!({}),
        "this is the answer in english."
    ));
    assert!(!check(
        "change_case:english_lowercase",
        json!({}),
        "이것은 답이다."
    ));
    assert!(check("punctuation:no_comma", json!({}), "하나 둘 셋"));
    assert!(!check("punctuation:no_comma", json!({}), "하나, 둘"));
}

#[test]
fn strict_versus_loose() {
    let ids = vec![
        "startend:quotation".to_string(),
        "detectable_format:title".to_string(),
    ];
    let kwargs = vec![Map::new(), Map::new()];
    // A preamble line breaks strict quotation, not loose (first line dropped).
    let r = "Sure! Here it is:\n\"<<제목>> 본문\"";
    let out = evaluate(&ids, &kwargs, "prompt", r).unwrap();
    assert_eq!(out.strict, vec![false, true]);
    assert_eq!(out.loose, vec![true, true]);
    assert!(!out.prompt_strict() && out.prompt_loose());
    // Empty responses follow nothing.
    let out = evaluate(&ids[..1], &kwargs[..1], "p", "  ").unwrap();
    assert_eq!((out.strict[0], out.loose[0]), (false, false));
    assert!(evaluate(&ids, &kwargs[..1], "p", "x").is_err());
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn every_checker_on_any_text(response in "(?s).{0,300}", marker in ".{0,8}", n in 0u64..20) {
            let args = json!({
                "keywords": [marker.clone()], "keyword": marker.clone(), "frequency": n, "relation": "at least",
                "forbidden_words": [marker.clone()], "letter": marker.clone(), "let_frequency": n, "let_relation": "less than",
                "language": marker.clone(), "num_sentences": n, "num_paragraphs": n, "num_words": n,
                "nth_paragraph": n, "first_word": marker.clone(), "num_placeholders": n, "postscript_marker": marker.clone(),
                "num_bullets": n, "num_highlights": n, "section_spliter": marker.clone(), "num_sections": n,
                "prompt_to_repeat": marker.clone(), "end_phrase": marker.clone(), "capital_frequency": n, "capital_relation": "less than"
            });
            let ids: Vec<String> = INSTRUCTION_IDS.iter().map(|s| s.to_string()).collect();
            let kwargs = vec![kw(args); ids.len()];
            let out = evaluate(&ids, &kwargs, "p", &response).unwrap();
            // Loose is never stricter than strict.
            for (s, l) in out.strict.iter().zip(&out.loose) {
                prop_assert!(!s || *l);
            }
        }
    }
}
