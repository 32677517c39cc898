//! A real HTTP server for tests: Debian's nginx serving a folder on a free loopback port,
//! with its own configuration, pid and logs under a work folder (no system-wide files, no
//! daemon, no root privileges needed). Dropping the handle stops it.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    port: u16,
    work: PathBuf,
}

/// Where nginx is: `DOKJA_NGINX`, /usr/sbin/nginx, or the PATH.
pub fn nginx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DOKJA_NGINX") {
        return Some(PathBuf::from(p));
    }
    let mut candidates = vec![PathBuf::from("/usr/sbin/nginx")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nginx")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

impl Nginx {
    /// Serves `root` (read-only, static files with Range support). `work` holds the
    /// configuration and logs. Returns None, after printing why, when nginx is not installed
    /// and DOKJA_REQUIRE_TEST_MODELS is not 1; panics when it is required.
    pub fn serve_or_skip(root: &Path, work: &Path) -> Option<Nginx> {
        let Some(binary) = nginx_binary() else {
            let why =
                "nginx is not installed (apt-get install nginx-light; scripts/test.sh does it)";
            if std::env::var("DOKJA_REQUIRE_TEST_MODELS").as_deref() == Ok("1") {
                panic!("{why}");
            }
            eprintln!("skipped: {why}");
            return None;
        };
        Some(
            Nginx::serve(&binary, root, work).unwrap_or_else(|e| panic!("cannot start nginx: {e}")),
        )
    }

    pub fn serve(binary: &Path, root: &Path, work: &Path) -> io::Result<Nginx> {
        std::fs::create_dir_all(work)?;
        let mut last = io::Error::other("no attempt");
        // The free port is found by binding and released before nginx binds it: another
        // process may take it in between, hence a few attempts.
        for _ in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            match Nginx::start(binary, root, work, port) {
                Ok(n) => return Ok(n),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start(binary: &Path, root: &Path, work: &Path, port: u16) -> io::Result<Nginx> {
        let w = work.display();
        let config = format!(
            "daemon off;
master_process off;
worker_processes 1;
error_log {w}/error.log warn;
pid {w}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {w}/client_body;
  default_type application/octet-stream;
  types {{ application/json json; }}
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location / {{ }}
  }}
}}
",
            root = root.display()
        );
        let conf = work.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(work)
            .arg("-e")
            .arg(work.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut nginx = Nginx {
            child,
            port,
            work: work.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = nginx.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "nginx exited ({status}) on port {port}: {}",
                    nginx.log()
                )));
            }
            if TcpStream::connect_timeout(
                &(Ipv4Addr::LOCALHOST, port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "nginx did not listen on port {port} within 10 s: {}",
                    nginx.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// The error log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.work.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
