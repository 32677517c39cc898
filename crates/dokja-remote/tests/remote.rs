//! Remote reading against a real nginx on loopback, and against a fault-injecting proxy in
//! front of it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dokja_formats::{Model, OpenOptions};
use dokja_remote::url::Url;
use dokja_remote::{Client, RemoteConfig, RemoteError, RemoteFile, open_model};
use dokja_testkit::nginx::Nginx;
use dokja_testkit::{
    GgufOptions, GgufType, LlamaSpec, QuantType, StDtype, WeightsLayout, llama_like, write_gguf,
    write_hf_folder,
};

mod common;
use common::{Fault, FaultProxy};

/// Small blocks so that synthetic models span many of them, short timeouts and retry
/// delays so that fault tests finish quickly.
fn test_config() -> RemoteConfig {
    RemoteConfig {
        block_size: 4096,
        cache_bytes: 160 << 10,
        read_timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(2),
        retry_delay: Duration::from_millis(10),
        max_retry_delay: Duration::from_millis(50),
        max_attempts: 3,
        ..RemoteConfig::default()
    }
}

fn client(config: RemoteConfig) -> Arc<Client> {
    Arc::new(Client::new(config))
}

/// Writes the synthetic models nginx serves: an HF folder with one safetensors file, one
/// with shards, and a GGUF file.
fn write_models(root: &Path) {
    let model = llama_like(&LlamaSpec::default(), 7);
    write_hf_folder(
        &model,
        &root.join("single"),
        WeightsLayout::Single,
        StDtype::BF16,
    )
    .unwrap();
    write_hf_folder(
        &model,
        &root.join("sharded"),
        WeightsLayout::Sharded {
            max_shard_bytes: 60_000,
        },
        StDtype::F32,
    )
    .unwrap();
    write_gguf(
        &model,
        &root.join("model.gguf"),
        &GgufOptions::with_type(GgufType::Quant(QuantType::Q8_0)),
    )
    .unwrap();
}

struct Served {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    nginx: Nginx,
}

fn serve_models() -> Option<Served> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    write_models(&root);
    let nginx = Nginx::serve_or_skip(&root, &dir.path().join("nginx"))?;
    Some(Served {
        root,
        nginx,
        _dir: dir,
    })
}

fn assert_same_model(local: &Model, remote: &Model) {
    assert_eq!(local.format, remote.format);
    assert_eq!(local.files.len(), remote.files.len());
    assert_eq!(local.total_bytes(), remote.total_bytes());
    let json = |v: &dyn erased::Ser| v.json();
    assert_eq!(json(&local.tensors), json(&remote.tensors));
    assert_eq!(json(&local.metadata), json(&remote.metadata));
    let mut sidecars = (
        serde_json::to_value(&local.sidecars).unwrap(),
        serde_json::to_value(&remote.sidecars).unwrap(),
    );
    sidecars.0["folder"] = serde_json::Value::Null;
    sidecars.1["folder"] = serde_json::Value::Null;
    assert_eq!(sidecars.0, sidecars.1);
    for t in &local.tensors {
        assert_eq!(
            local.read_all(t).unwrap(),
            remote.read_all(remote.tensor(&t.name).unwrap()).unwrap(),
            "{}",
            t.name
        );
    }
}

mod erased {
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap()
        }
    }
}

#[test]
fn remote_models_read_as_local_ones() {
    let Some(s) = serve_models() else { return };
    let cases = [
        ("single/", "single", true),
        ("sharded/", "sharded", true),
        (
            "sharded/model.safetensors.index.json",
            "sharded/model.safetensors.index.json",
            true,
        ),
        ("single/model.safetensors", "single/model.safetensors", true),
        ("model.gguf", "model.gguf", false),
    ];
    for (url_path, local_path, has_sidecars) in cases {
        let local = Model::open(&s.root.join(local_path), OpenOptions::default()).unwrap();
        let c = client(test_config());
        let remote = open_model(&c, &s.nginx.url(url_path))
            .unwrap_or_else(|e| panic!("{url_path}: {e}\n{}", s.nginx.log()));
        assert_eq!(
            remote.path.to_str().unwrap(),
            s.nginx.url(url_path).trim_end_matches('/').to_string()
                + if url_path.ends_with('/') { "/" } else { "" }
        );
        assert_same_model(&local, &remote);
        assert_eq!(remote.sidecars.config.is_some(), has_sidecars, "{url_path}");
        let stats = c.stats();
        assert!(stats.bytes_fetched > 0 && stats.requests > 0);
    }
}

#[test]
fn headers_cost_a_fraction_of_the_model_and_small_reads_are_cached() {
    let Some(s) = serve_models() else { return };
    let c = client(test_config());
    let model = open_model(&c, &s.nginx.url("sharded/")).unwrap();
    let after_open = c.stats();
    // One probe per file (index, shards, sidecars) of at most one block each.
    assert!(
        after_open.bytes_fetched < model.total_bytes() / 2,
        "{after_open:?} for a model of {} bytes",
        model.total_bytes()
    );
    let t = model
        .tensors
        .iter()
        .max_by_key(|t| t.byte_len)
        .expect("tensors");
    let mut rows = Vec::new();
    model.read_rows(t, 3..5, &mut rows).unwrap();
    let first = c.stats();
    model.read_rows(t, 3..5, &mut rows).unwrap();
    model.read_rows(t, 4..5, &mut rows).unwrap();
    let again = c.stats();
    assert_eq!(
        first.requests, again.requests,
        "cached rows cost no request"
    );
    assert_eq!(first.bytes_fetched, again.bytes_fetched);
    assert!(again.cache_hits >= 2);
}

#[test]
fn the_byte_budget_stops_reading_with_a_clear_error() {
    let Some(s) = serve_models() else { return };
    let max = 40_000;
    let c = client(RemoteConfig {
        max_bytes: Some(max),
        ..test_config()
    });
    let model = open_model(&c, &s.nginx.url("single/model.safetensors")).unwrap();
    let err = model
        .tensors
        .iter()
        .try_for_each(|t| model.read_all(t).map(drop))
        .expect_err("the model is larger than the budget");
    let text = err.to_string();
    assert!(
        text.contains("byte budget of 40000 bytes") && text.contains("/single/model.safetensors"),
        "{text}"
    );
    assert!(c.stats().bytes_fetched <= max);
}

/// A file of distinct bytes, served directly by nginx and through the proxy.
fn serve_blob(len: usize) -> Option<(tempfile::TempDir, Vec<u8>, Nginx, FaultProxy)> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let blob: Vec<u8> = (0..len as u64)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    std::fs::write(root.join("blob.bin"), &blob).unwrap();
    let nginx = Nginx::serve_or_skip(&root, &dir.path().join("nginx"))?;
    let proxy = FaultProxy::new(nginx.port());
    Some((dir, blob, nginx, proxy))
}

fn open_blob(c: &Arc<Client>, proxy: &FaultProxy) -> Result<Option<RemoteFile>, RemoteError> {
    RemoteFile::open(c, &Url::parse(&proxy.url("blob.bin")).unwrap())
}

use dokja_formats::source::ByteSource;

#[test]
fn a_dropped_connection_is_resumed_from_the_last_byte_received() {
    let Some((_dir, blob, _nginx, proxy)) = serve_blob(100_000) else {
        return;
    };
    let c = client(test_config());
    let file = open_blob(&c, &proxy).unwrap().unwrap();
    // The next request (blocks 2 to 21, fetched in one request) loses its second half.
    proxy.plan(&[Fault::DropMidBody]);
    let got = file.read_at(10_000, 80_000).unwrap();
    assert_eq!(&got[..], &blob[10_000..90_000]);
    let ranges = proxy.ranges();
    assert_eq!(ranges[1], "bytes=8192-90111");
    assert_eq!(
        ranges[2], "bytes=49152-90111",
        "resumed after the 40960 bytes received"
    );
    let stats = c.stats();
    assert_eq!(stats.resumes, 1);
    assert_eq!(stats.bytes_fetched, 4096 + 20 * 4096);
    // A read larger than half the cache fetches exactly its range.
    let got = file.read_at(1, 99_998).unwrap();
    assert_eq!(&got[..], &blob[1..99_999]);
    assert_eq!(proxy.ranges()[3], "bytes=1-99998");
}

#[test]
fn server_errors_are_retried() {
    let Some((_dir, blob, _nginx, proxy)) = serve_blob(10_000) else {
        return;
    };
    let c = client(test_config());
    proxy.plan(&[Fault::Status500, Fault::Status500]);
    let file = open_blob(&c, &proxy).unwrap().unwrap();
    assert_eq!(file.size(), 10_000);
    assert_eq!(&file.read_at(0, 10_000).unwrap()[..], &blob[..]);
    assert_eq!(c.stats().retries, 2);
    // A server that keeps failing is given up on, naming the URL and the last fault.
    proxy.plan(&[Fault::Status500; 3]);
    let err = open_blob(&client(test_config()), &proxy).unwrap_err();
    assert!(
        matches!(err, RemoteError::GaveUp { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("blob.bin: HTTP 500"), "{err}");
}

#[test]
fn lying_lengths_and_ranges_are_refused() {
    let Some((_dir, _blob, _nginx, proxy)) = serve_blob(50_000) else {
        return;
    };
    let c = client(test_config());
    let file = open_blob(&c, &proxy).unwrap().unwrap();
    for (fault, expect) in [
        (
            Fault::LieContentLength,
            "Content-Length 32775 does not match the 32768 bytes",
        ),
        (
            Fault::ShiftContentRange,
            "asked for bytes 8192-40959 but the server answered Content-Range \"bytes 8193-40960/50000\"",
        ),
        (
            Fault::ExtraBody,
            "the body went on past the 32768 bytes announced",
        ),
    ] {
        proxy.plan(&[fault]);
        let err = file.read_at(10_000, 30_000).unwrap_err(); // blocks 2 to 9
        let text = err.to_string();
        assert!(
            text.contains(expect) && text.contains("/blob.bin"),
            "{fault:?}: {text}"
        );
    }
}

#[test]
fn a_server_ignoring_range_is_refused_without_downloading_the_file() {
    let Some((_dir, _blob, _nginx, proxy)) = serve_blob(50_000) else {
        return;
    };
    let c = client(test_config());
    proxy.plan(&[Fault::IgnoreRange]);
    let err = open_blob(&c, &proxy).unwrap_err();
    assert!(
        err.to_string().contains("ignored the Range request (HTTP 200 with Content-Length 50000 for 4096 requested bytes)"),
        "{err}"
    );
    assert_eq!(c.stats().bytes_fetched, 0);
}

#[test]
fn a_small_file_sent_whole_is_accepted() {
    let Some((_dir, blob, _nginx, proxy)) = serve_blob(3000) else {
        return;
    };
    let c = client(test_config());
    proxy.plan(&[Fault::IgnoreRange]);
    let file = open_blob(&c, &proxy).unwrap().unwrap();
    assert_eq!(&file.read_at(0, 3000).unwrap()[..], &blob[..]);
}

#[test]
fn a_hanging_server_times_out() {
    let Some((_dir, _blob, _nginx, proxy)) = serve_blob(10_000) else {
        return;
    };
    let c = client(test_config());
    proxy.plan(&[Fault::Hang; 3]);
    let err = open_blob(&c, &proxy).unwrap_err();
    match &err {
        RemoteError::GaveUp { last, .. } => {
            assert!(matches!(**last, RemoteError::Timeout { .. }), "{err}")
        }
        _ => panic!("{err}"),
    }
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn a_missing_file_is_absent_not_an_error() {
    let Some((_dir, _blob, nginx, _proxy)) = serve_blob(10) else {
        return;
    };
    let c = client(test_config());
    let url = Url::parse(&nginx.url("nothing.bin")).unwrap();
    assert!(RemoteFile::open(&c, &url).unwrap().is_none());
    let err = open_model(&c, &nginx.url("nothing/")).unwrap_err();
    assert!(
        err.to_string()
            .contains("neither model.safetensors.index.json nor model.safetensors"),
        "{err}"
    );
}

#[test]
fn a_model_read_through_dropped_connections_is_intact() {
    let Some(s) = serve_models() else { return };
    let proxy = FaultProxy::new(s.nginx.port());
    let c = client(test_config());
    let remote = open_model(&c, &proxy.url("sharded/")).unwrap();
    let local = Model::open(&s.root.join("sharded"), OpenOptions::default()).unwrap();
    proxy.plan(&[Fault::DropMidBody, Fault::Status500, Fault::DropMidBody]);
    assert_same_model(&local, &remote);
    assert!(
        c.stats().resumes >= 1 && c.stats().retries >= 1,
        "{:?}",
        c.stats()
    );
}

#[test]
fn a_budget_smaller_than_a_block_still_learns_sizes() {
    let Some((_dir, _blob, _nginx, proxy)) = serve_blob(10_000) else {
        return;
    };
    let c = client(RemoteConfig {
        max_bytes: Some(1000),
        ..test_config()
    });
    let file = open_blob(&c, &proxy).unwrap().unwrap();
    assert_eq!(file.size(), 10_000);
    assert_eq!(proxy.ranges(), ["bytes=0-999"]);
    let err = file.read_at(0, 10).unwrap_err().to_string();
    assert!(
        err.contains("reading 4096 more bytes would exceed the remote byte budget of 1000 bytes (1000 already fetched"),
        "{err}"
    );
    assert_eq!(c.stats().bytes_fetched, 1000);
}
