//! A real llama.cpp `llama-server` on a loopback port, for the HTTP backends' tests.
//!
//! The binary comes from `scripts/build-llama-cpp.sh` (env `DOKJA_LLAMA_CPP`, set by
//! `scripts/test.sh`, else the script's cached folder). The server runs under a tiny `sh`
//! watchdog that holds the read end of a pipe from the test process: when the test process
//! ends in any way (even killed), the pipe closes and the watchdog kills the server, so no
//! server outlives its tests, even one kept in a `static`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to load its model and answer `/health` with 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The real model the tests serve, relative to `DOKJA_TEST_MODELS`.
pub const SMOLLM2: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The alias under which [`LlamaServer::start`] serves its model.
pub const ALIAS: &str = "smollm2";

// `$0` is the server binary, `$@` its arguments. Background jobs of a non-interactive shell
// read /dev/null, hence the pipe is duplicated to fd 3 first.
const WATCHDOG: &str = r#"exec 3<&0
"$0" "$@" </dev/null &
server=$!
{ read -r _ <&3; kill -KILL "$server" 2>/dev/null; } &
watchdog=$!
wait "$server"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status""#;

/// A running `llama-server`; killed on drop.
pub struct LlamaServer {
    binary: PathBuf,
    model: PathBuf,
    extra_args: Vec<String>,
    port: u16,
    log: PathBuf,
    process: Option<(Child, ChildStdin)>,
}

/// The `llama-server` binary: `$DOKJA_LLAMA_CPP/llama-server`, else the folder
/// `scripts/build-llama-cpp.sh --print-dir` names. `None` if neither exists.
pub fn llama_server_binary() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOKJA_LLAMA_CPP") {
        Some(d) => PathBuf::from(d),
        None => {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-llama-cpp.sh");
            let out = Command::new("bash")
                .arg(script)
                .arg("--print-dir")
                .stderr(Stdio::null())
                .output()
                .ok()?;
            PathBuf::from(String::from_utf8(out.stdout).ok()?.trim())
        }
    };
    let binary = dir.join("llama-server");
    binary.is_file().then_some(binary)
}

fn required() -> bool {
    std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_some_and(|v| v == "1")
}

impl LlamaServer {
    /// Serves SmolLM2-135M-Instruct: `None` (with a printed notice) when the model or the
    /// binary is missing and not required; panics when required
    /// (`DOKJA_REQUIRE_TEST_MODELS=1`) but missing, or when the server does not start.
    pub fn smollm2(extra_args: &[&str]) -> Option<LlamaServer> {
        let model = crate::real_model(SMOLLM2)?;
        if llama_server_binary().is_none() {
            let message = "llama-server not found: set DOKJA_LLAMA_CPP or run \
                           scripts/build-llama-cpp.sh";
            if required() {
                panic!("{message}");
            }
            eprintln!("skipped: {message}");
            return None;
        }
        Some(LlamaServer::start(&model, extra_args).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Starts `llama-server -m MODEL --host 127.0.0.1 --port P -c 2048 -t 1 -np 2
    /// --alias smollm2 --no-webui EXTRA_ARGS` on a free port and waits until `/health`
    /// answers 200 (503 while the model loads).
    ///
    /// One thread, not two: llama.cpp's worker threads spin, and on a busy 2-core machine
    /// (the CI and build machines) two threads decoded SmolLM2 at 1.7-2.7 s per token
    /// against 60 ms with one. Later arguments in `extra_args` override these.
    pub fn start(model: &Path, extra_args: &[&str]) -> io::Result<LlamaServer> {
        let binary = llama_server_binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "llama-server not found: set DOKJA_LLAMA_CPP or run scripts/build-llama-cpp.sh",
            )
        })?;
        if !model.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("model {} not found", model.display()),
            ));
        }
        let mut last_error = None;
        // Another process may take the free port between our probe and the server's bind.
        for _ in 0..3 {
            let port = free_port()?;
            let mut server = LlamaServer {
                binary: binary.clone(),
                model: model.to_path_buf(),
                extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
                port,
                log: std::env::temp_dir().join(format!(
                    "dokja-llama-server-{}-{port}.log",
                    std::process::id()
                )),
                process: None,
            };
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("three attempts were made"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The OpenAI-compatible API root, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Kills the server (SIGKILL, as a crash) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some((mut child, stdin)) = self.process.take() {
            drop(stdin); // the watchdog sees EOF and kills the server
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if running and starts it again on the same port.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.launch()
    }

    fn launch(&mut self) -> io::Result<()> {
        let log = std::fs::File::create(&self.log)?;
        let port = self.port.to_string();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(&self.binary)
            .arg("-m")
            .arg(&self.model)
            .args(["--host", "127.0.0.1", "--port", &port])
            .args([
                "-c",
                "2048",
                "-t",
                "1",
                "-np",
                "2",
                "--alias",
                ALIAS,
                "--no-webui",
            ])
            .args(&self.extra_args)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        self.process = Some((child, stdin));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some((child, _)) = self.process.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.process = None;
                return Err(io::Error::other(format!(
                    "llama-server exited ({status}) before it was ready; its log ends:\n{}",
                    self.log_tail()
                )));
            }
            if health_status(self.addr()) == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "llama-server on port {} not healthy after {:?}; its log ends:\n{}",
                        self.port,
                        START_TIMEOUT,
                        self.log_tail()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines the server logged (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The status of `GET /health`, or `None` if nothing answers (yet).
fn health_status(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let line = std::str::from_utf8(&head[..len]).ok()?;
    line.strip_prefix("HTTP/1.1 ")
        .or_else(|| line.strip_prefix("HTTP/1.0 "))?
        .get(..3)?
        .parse()
        .ok()
}
