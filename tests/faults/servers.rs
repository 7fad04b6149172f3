//! Private servers for the tests that crash a server itself, never the shared ones: a
//! PostgreSQL with its own data folder and port, and RabbitMQ nodes with their own ports and
//! folders, alone or joined in a cluster. Each is SIGKILLed and its folder removed when its
//! guard drops. Both run as their Debian system user (the tests run as root, as CI does).

use crate::process::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A folder of the test's own, owned by `user`, removed by the guard that holds it.
fn private_dir(kind: &str, user: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "contact-import-{kind}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create a private server folder");
    run("chown", &["-R", &format!("{user}:{user}"), path(&dir)]);
    dir
}

fn path(dir: &Path) -> &str {
    dir.to_str().expect("a UTF-8 temporary path")
}

/// Runs a command to its end; panics with its output when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{program} {args:?} failed: {text}");
    text
}

/// SIGKILLs a process and, first, its children (a postmaster's backends are sessions of their
/// own, so a process group does not hold them).
fn kill_tree(pid: u32) {
    let _ = Command::new("pkill")
        .args(["-KILL", "-P", &pid.to_string()])
        .status();
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// The folder of PostgreSQL's server programs: `initdb` on the PATH, or Debian's.
fn pg_bin(program: &str) -> String {
    if Command::new("which")
        .arg(program)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return program.to_owned();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    let found = versions
        .last()
        .map(|v| v.join("bin").join(program))
        .expect("PostgreSQL's server programs (Debian's postgresql package)");
    path(&found).to_owned()
}

/// The process a server runs as (`runuser`, `rabbitmq-server`), waited for once killed.
#[derive(Default)]
struct Running(Mutex<Option<Child>>);

impl Running {
    fn set(&self, child: Child) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(child);
        }
    }

    /// Reaps it once the server it ran was killed: `runuser` (or the node's script) waits
    /// for its child, so the killed server does not linger as a zombie whose pid a new
    /// server's lock file check would take for a live one. Killed after 10 s if still there.
    fn reap(&self) {
        let child = self.0.lock().ok().and_then(|mut slot| slot.take());
        if let Some(mut child) = child {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A PostgreSQL server of the test's own.
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    running: Running,
}

impl PgServer {
    /// Initialises a data folder and starts the server on a free port.
    pub async fn start() -> PgServer {
        let dir = private_dir("pg", "postgres");
        let data = dir.join("data");
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                &pg_bin("initdb"),
                "-D",
                path(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        let server = PgServer {
            dir,
            port: free_port().port(),
            running: Running::default(),
        };
        server.launch().await;
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    async fn launch(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("a log file");
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--", &pg_bin("postgres")])
            .args(["-D", path(&self.data()), "-p", &self.port.to_string()])
            .args(["-k", path(&self.dir), "-c", "listen_addresses=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.running.set(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        while sqlx::PgPool::connect(&self.admin_url()).await.is_err() {
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "the private PostgreSQL did not start; its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Its `postgres` database, to create the test's database from.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `kill -9` of the postmaster and every backend: a crash, recovered from the WAL by the
    /// next start.
    pub fn crash(&self) {
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
            .expect("the postmaster's pid");
        kill_tree(pid);
        self.running.reap();
        eprintln!("kill -9 of the private PostgreSQL (postmaster {pid} and its backends)");
    }

    /// Starts it again on the same folder and port (crash recovery runs first). Its lock file
    /// goes first: the server it names was killed, and its pid may be another process's now.
    pub async fn restart(&self) {
        let _ = std::fs::remove_file(self.data().join("postmaster.pid"));
        let _ = std::fs::remove_file(self.dir.join(format!(".s.PGSQL.{}.lock", self.port)));
        self.launch().await;
        eprintln!("the private PostgreSQL is back on port {}", self.port);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
        {
            kill_tree(pid);
        }
        self.running.reap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A RabbitMQ node of the test's own.
pub struct RabbitNode {
    pub name: String,
    dir: PathBuf,
    port: u16,
    dist_port: u16,
    running: Running,
}

impl RabbitNode {
    /// Starts a node (`name@localhost`) on a free AMQP port and waits until it runs.
    pub fn start(name: &str) -> RabbitNode {
        let dir = private_dir("rabbit", "rabbitmq");
        let port = free_port().port();
        let dist_port = free_port().port();
        std::fs::write(dir.join("enabled_plugins"), "[].").expect("the plugins file");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .expect("the configuration");
        run("chown", &["-R", "rabbitmq:rabbitmq", path(&dir)]);
        let node = RabbitNode {
            name: format!("{name}@localhost"),
            dir,
            port,
            dist_port,
            running: Running::default(),
        };
        node.launch();
        eprintln!("private RabbitMQ node {} on port {port}", node.name);
        node
    }

    fn launch(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("out.log"))
            .expect("a log file");
        let child = Command::new("setsid")
            .arg("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", self.pid_file())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("start rabbitmq-server");
        self.running.set(child);
        self.wait_running();
    }

    /// Starts it again after a crash, on the same folder, name and ports.
    pub fn restart(&self) {
        let _ = std::fs::remove_file(self.pid_file());
        self.launch();
        eprintln!("RabbitMQ node {} is back", self.name);
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("node.pid")
    }

    fn ctl(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("rabbitmqctl", &all)
    }

    fn wait_running(&self) {
        let pid_file = self.pid_file();
        self.ctl(&["wait", path(&pid_file), "--timeout", "90"]);
    }

    /// The node's AMQP URL.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Joins the cluster of `first`.
    pub fn join(&self, first: &RabbitNode) {
        self.ctl(&["stop_app"]);
        self.ctl(&["join_cluster", &first.name]);
        self.ctl(&["start_app"]);
        eprintln!("{} joined {}", self.name, first.name);
    }

    /// Waits until the node has written the registration of each of `queues` (full names,
    /// without the vhost) to its Ra directory on disk.
    ///
    /// RabbitMQ 3.10 (Ra 2.2, Debian 12's package) saves that directory only every 500 ms: a
    /// node killed sooner after a quorum queue was declared starts again with the queue's data
    /// but without its registration, makes a new empty member, and that member never elects
    /// itself (rabbitmq/ra#443, rabbitmq/rabbitmq-server#15725). That is the broker's own
    /// window, not a fault the service can answer, so a test that means to crash a node waits
    /// it out on the condition itself.
    pub async fn wait_queues_registered(&self, queues: &[String]) {
        let names = self
            .dir
            .join("mnesia")
            .join(&self.name)
            .join("quorum")
            .join(&self.name)
            .join("names.dets");
        // A registration is the queue's resource name as an Erlang binary, followed by the
        // binary tag of its directory's name: `%2F_<queue>` then `m`.
        let wanted: Vec<Vec<u8>> = queues
            .iter()
            .map(|queue| format!("%2F_{queue}m").into_bytes())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let saved = std::fs::read(&names).unwrap_or_default();
            let registered =
                |name: &Vec<u8>| saved.windows(name.len()).any(|w| w == name.as_slice());
            if wanted.iter().all(registered) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "RabbitMQ node {} did not save the registration of {queues:?} in {}",
                self.name,
                names.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9` of the node: its VM and everything in its session.
    pub fn crash(&self) {
        if let Some(pid) = std::fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        {
            // Debian's script runs the VM under su in a session of its own: kill its group.
            let group = Command::new("ps")
                .args(["-o", "pgid=", "-p", &pid.to_string()])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|g| !g.is_empty());
            let own = Command::new("ps")
                .args(["-o", "pgid=", "-p", &std::process::id().to_string()])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
            if let Some(group) = group.filter(|g| Some(g) != own.as_ref()) {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{group}")])
                    .status();
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            eprintln!("kill -9 of RabbitMQ node {} (pid {pid})", self.name);
        }
        self.running.reap();
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.crash();
        if std::thread::panicking() {
            // CI keeps only what the test prints: the node's own account of the failure.
            let log = self.dir.join("log").join(format!("{}.log", self.name));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!(
                "---- last lines of RabbitMQ node {} ({}) ----\n{}\n----",
                self.name,
                log.display(),
                tail.join("\n")
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
