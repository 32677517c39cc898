//! Hostile and broken GGUF files: each gives a FormatError naming the fault, never a
//! panic, a hang or an allocation sized by a number the file chose.

mod gguf_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use dokja_formats::{FormatError, ReadMode};
use gguf_support::*;

/// Records the largest single allocation, to show hostile counts allocate nothing big.
struct PeakAlloc;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: PeakAlloc = PeakAlloc;

/// Every file in this test binary is tiny: nothing should ever need 16 MiB at once.
fn assert_no_big_allocation() {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < 16 << 20,
        "an allocation of {largest} bytes was made"
    );
}

fn assert_err_contains(bytes: &[u8], needles: &[&str]) {
    let msg = open_err(bytes);
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} should mention {n:?}");
    }
    assert_no_big_allocation();
}

/// A valid llama file with metadata of several kinds, a tokenizer and three tensors.
fn valid() -> Gguf {
    let mut g = Gguf::arch("llama");
    g.kv("llama.attention.head_count", Val::U32(2))
        .kv("llama.attention.head_count_kv", Val::U32(1))
        .kv("general.license", Val::str("mit"))
        .kv("tokenizer.ggml.model", Val::str("gpt2"))
        .kv("tokenizer.ggml.tokens", Val::strs(&["a", "b", "c"]))
        .kv(
            "t.nested",
            Val::Arr(ty::ARRAY, vec![Val::Arr(ty::U16, vec![Val::U16(7)])]),
        )
        .f32_tensor("token_embd.weight", &[4, 3], &[0.5; 12])
        .f32_tensor("blk.0.attn_q.weight", &[4, 4], &[1.0; 16])
        .f32_tensor("blk.0.attn_k.weight", &[4, 2], &[2.0; 8]);
    g
}

fn patch_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn patch_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn the_valid_file_opens() {
    let m = open_bytes(&valid().build()).unwrap();
    assert_eq!(m.tensors.len(), 3);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = valid().build();
    for cut in 0..bytes.len() {
        let mode = if cut % 2 == 0 {
            ReadMode::Mmap
        } else {
            ReadMode::Pread
        };
        let r = open_bytes_with(&bytes[..cut], mode);
        assert!(r.is_err(), "cut at {cut} of {} opened", bytes.len());
    }
    assert_no_big_allocation();
}

#[test]
fn truncated_data_is_reported_as_such() {
    let bytes = valid().build();
    assert_err_contains(
        &bytes[..bytes.len() - 1],
        &["blk.0.attn_k.weight", "outside the data section"],
    );
    assert_err_contains(&bytes[..10], &["tensor count", "truncated"]);
    assert_err_contains(&[], &["magic"]);
}

#[test]
fn bad_magic_and_versions() {
    let mut b = valid().build();
    b[0..4].copy_from_slice(b"GGML");
    assert_err_contains(&b, &["not a GGUF file"]);

    let unsupported = |version: [u8; 4], needle: &str| {
        let mut b = valid().build();
        b[4..8].copy_from_slice(&version);
        let t = write_temp(&b);
        let err = dokja_formats::gguf::open(&t.path, Default::default()).unwrap_err();
        assert!(matches!(err, FormatError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    };
    unsupported(1u32.to_le_bytes(), "version 1");
    unsupported(3u32.to_be_bytes(), "big-endian");
    unsupported(2u32.to_be_bytes(), "big-endian");
    unsupported(4u32.to_le_bytes(), "version 4");
    unsupported(0u32.to_le_bytes(), "version 0");
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    for (at, name) in [(8, "tensor count"), (16, "metadata")] {
        for v in [u64::MAX, u64::MAX / 2, 1 << 40, 1_000_000] {
            let mut b = valid().build();
            patch_u64(&mut b, at, v);
            let msg = open_err(&b);
            assert!(msg.contains(&v.to_string()) || msg.contains(name), "{msg}");
        }
    }
    assert_no_big_allocation();
}

#[test]
fn absurd_string_lengths_are_refused() {
    // The first metadata key's length is at byte 24.
    for v in [u64::MAX, 1 << 40, 70_000] {
        let mut b = valid().build();
        patch_u64(&mut b, 24, v);
        assert_err_contains(&b, &["metadata key"]);
    }
    // A string value's length: general.architecture = "llama".
    let key = "general.architecture";
    let at = 24 + 8 + key.len() + 4;
    let mut b = valid().build();
    patch_u64(&mut b, at, u64::MAX);
    assert_err_contains(&b, &[key]);
    // A tensor name's length.
    let mut g = Gguf::default();
    g.f32_tensor("x", &[1], &[1.0]);
    let mut b = g.build();
    patch_u64(&mut b, 24, u64::MAX);
    assert_err_contains(&b, &["name of tensor 0"]);
}

#[test]
fn absurd_array_lengths_are_refused() {
    for elem in [ty::U8, ty::STR, ty::ARRAY, ty::F64] {
        let item = match elem {
            ty::U8 => Val::U8(1),
            ty::STR => Val::str("s"),
            ty::ARRAY => Val::Arr(ty::U8, vec![]),
            _ => Val::F64(1.0),
        };
        let mut g = Gguf::default();
        g.kv("a", Val::Arr(elem, vec![item]));
        let mut b = g.build();
        // magic, version, counts (24) + key length and "a" (9) + value type (4) + elem type (4).
        let at = 24 + 9 + 4 + 4;
        for v in [u64::MAX, (1 << 24) + 1, 1 << 20] {
            patch_u64(&mut b, at, v);
            assert_err_contains(&b, &["\"a\"", "array"]);
        }
    }
}

#[test]
fn deep_nesting_and_unknown_value_types_are_refused() {
    let mut v = Val::Arr(ty::U8, vec![Val::U8(1)]);
    for _ in 0..12 {
        v = Val::Arr(ty::ARRAY, vec![v]);
    }
    let mut g = Gguf::default();
    g.kv("deep", v);
    assert_err_contains(&g.build(), &["nested"]);

    let mut g = Gguf::default();
    g.kv("a", Val::U8(1));
    let mut b = g.build();
    patch_u32(&mut b, 24 + 9, 13);
    assert_err_contains(&b, &["unknown value type 13"]);

    let mut g = Gguf::default();
    g.kv("a", Val::Arr(ty::U8, vec![]));
    let mut b = g.build();
    patch_u32(&mut b, 24 + 9 + 4, 77);
    assert_err_contains(&b, &["unknown value type 77"]);
}

#[test]
fn tensor_offsets_out_of_range_or_overlapping() {
    let mut g = valid();
    g.tensors[1].offset = Some(1 << 40);
    assert_err_contains(&g.build(), &["blk.0.attn_q.weight", "outside"]);

    let mut g = valid();
    g.tensors[2].offset = Some(u64::MAX - 31);
    assert_err_contains(&g.build(), &["blk.0.attn_k.weight"]);

    let mut g = valid();
    g.tensors[1].offset = Some(0);
    assert_err_contains(&g.build(), &["overlap"]);

    let mut g = valid();
    g.tensors[1].offset = Some(4);
    assert_err_contains(&g.build(), &["not a multiple of the alignment"]);
}

#[test]
fn unknown_and_unsupported_ggml_types() {
    for (id, needle) in [
        (99u32, "99"),
        (16, "IQ2_XXS"),
        (39, "MXFP4"),
        (u32::MAX, "4294967295"),
    ] {
        let mut g = valid();
        g.tensors[0].ggml_type = id;
        let t = write_temp(&g.build());
        let err = dokja_formats::gguf::open(&t.path, Default::default()).unwrap_err();
        assert!(matches!(err, FormatError::Unsupported { .. }), "{err}");
        assert!(
            err.to_string().contains(needle) && err.to_string().contains("token_embd.weight"),
            "{err}"
        );
    }
}

#[test]
fn bad_alignments() {
    for v in [
        Val::U32(0),
        Val::U32(3),
        Val::U32(48),
        Val::U64(1 << 40),
        Val::str("32"),
        Val::I32(-32),
    ] {
        let mut g = valid();
        g.kv("general.alignment", v);
        assert_err_contains(&g.build(), &["general.alignment"]);
    }
}

#[test]
fn too_many_dims() {
    let mut g = Gguf::default();
    g.tensor("x", &[1; 9], ggml::F32, vec![0; 4]);
    assert_err_contains(&g.build(), &["x", "9 dimensions"]);

    let mut g = Gguf::default();
    g.f32_tensor("x", &[1], &[1.0]);
    let mut b = g.build();
    patch_u32(&mut b, 24 + 8 + 1, u32::MAX);
    assert_err_contains(&b, &["4294967295 dimensions"]);
}

#[test]
fn shapes_that_do_not_match_their_bytes() {
    let mut g = Gguf::default();
    g.tensor("q", &[33], ggml::Q4_0, vec![0; 36]);
    assert_err_contains(&g.build(), &["q", "whole number"]);

    let mut g = Gguf::default();
    g.tensor("q", &[64, 3], ggml::Q4_0, vec![0; 36]);
    assert_err_contains(&g.build(), &["q", "outside"]);

    let mut g = Gguf::default();
    g.tensor("huge", &[u64::MAX, 2], ggml::F32, vec![0; 8]);
    assert_err_contains(&g.build(), &["huge", "overflows"]);

    let mut g = Gguf::default();
    g.tensor("huge", &[2, u64::MAX], ggml::F32, vec![0; 8]);
    assert_err_contains(&g.build(), &["huge", "overflows"]);

    let mut g = Gguf::default();
    g.tensor("huge", &[1 << 62], ggml::F32, vec![0; 8]);
    assert_err_contains(&g.build(), &["huge"]);
}

#[test]
fn duplicates() {
    let mut g = valid();
    g.kv("general.license", Val::str("again"));
    assert_err_contains(&g.build(), &["general.license", "twice"]);

    let mut g = valid();
    g.f32_tensor("token_embd.weight", &[4], &[0.0; 4]);
    assert_err_contains(&g.build(), &["token_embd.weight", "twice"]);
}

#[test]
fn head_counts_that_cannot_undo_the_permutation() {
    let mut g = Gguf::arch("llama");
    g.f32_tensor("blk.0.attn_q.weight", &[4, 4], &[1.0; 16]);
    assert_err_contains(&g.build(), &["llama.attention.head_count", "permutation"]);

    let mut g = Gguf::arch("llama");
    g.kv("llama.attention.head_count", Val::U32(3)).f32_tensor(
        "blk.0.attn_q.weight",
        &[4, 4],
        &[1.0; 16],
    );
    assert_err_contains(&g.build(), &["blk.0.attn_q.weight", "cannot be split"]);

    let mut g = Gguf::arch("llama");
    g.kv("llama.attention.head_count", Val::str("two"))
        .f32_tensor("blk.0.attn_q.weight", &[4, 4], &[1.0; 16]);
    assert_err_contains(&g.build(), &["llama.attention.head_count"]);

    let mut g = Gguf::arch("llama");
    g.kv("llama.attention.head_count", Val::U64(1 << 40))
        .f32_tensor("blk.0.attn_q.weight", &[4, 4], &[1.0; 16]);
    assert_err_contains(&g.build(), &["head count"]);
}

#[test]
fn tokenizer_of_the_wrong_type() {
    let mut g = Gguf::arch("llama");
    g.kv(
        "tokenizer.ggml.tokens",
        Val::Arr(ty::U32, vec![Val::U32(1)]),
    );
    assert_err_contains(&g.build(), &["tokenizer.ggml.tokens"]);
}

#[test]
fn file_that_is_only_a_header_with_no_padding() {
    // No tensors: the file may end right after the header.
    let mut g = Gguf::default();
    g.kv("x", Val::U8(1));
    let m = open_bytes(&g.header()).unwrap();
    assert!(m.tensors.is_empty());
}

#[test]
fn empty_tensor_with_partial_block_rows() {
    // Zero elements, but rows of 7 cannot be Q4_0 blocks: found by the fuzz test (reading
    // such a tensor used to hit an "validated at open" expect).
    let mut g = Gguf::default();
    g.tensor("q", &[7, 0], ggml::Q4_0, vec![]);
    assert_err_contains(&g.build(), &["q", "whole number"]);
    // Zero elements, but one row would be 2^64 bytes.
    let mut g = Gguf::default();
    g.tensor("f", &[1 << 62, 0], ggml::F32, vec![]);
    assert_err_contains(&g.build(), &["f", "overflows"]);
}
