//! A Redis Sentinel set of its own for a test: a master and one replica (the replica logs in as
//! a user of its own, so that a test can cut it off: see [`TestReplica`]) and three sentinels,
//! each a `redis-server <conf> --sentinel` on a free port with a writable configuration file
//! in a temporary folder (a sentinel rewrites its file). A short `down-after-milliseconds` and
//! `failover-timeout`, so that a failover takes a few seconds.

use std::{collections::HashMap, process::Stdio, time::Duration};

use privmsg::store::{RedisTarget, SentinelTarget};
use tokio::process::{Child, Command};

use super::{
    TestRedis, TestReplica,
    cluster::{query, url},
    redis_server::{answers_as, free_port},
    replica::connected_replicas,
    wait::eventually_within,
};

/// The name the sentinels monitor the master under (the server's default).
pub const MASTER_NAME: &str = "mymaster";
/// How long the sentinels wait before they call a silent master down.
const DOWN_AFTER_MS: u64 = 1_000;
/// How long a failover may take before the sentinels try another.
const FAILOVER_TIMEOUT_MS: u64 = 4_000;
/// How long the sentinels have to find one another and the replica, or to finish a failover.
const SETTLE: Duration = Duration::from_secs(30);

pub struct SentinelSet {
    /// What a node is given: the sentinels' addresses and the master's name.
    pub redis: TestRedis,
    /// The master at the start (killed and restarted by tests; a replica after a failover).
    pub master: TestRedis,
    pub master_port: u16,
    /// Its replica at the start (the master after a failover).
    pub replica: TestReplica,
    pub sentinel_ports: Vec<u16>,
    _sentinels: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl SentinelSet {
    /// Starts the master, the replica (in sync), and three sentinels that know each other and
    /// the replica.
    pub async fn start() -> Self {
        let master = TestRedis::spawn_standalone(&[]).await;
        let RedisTarget::Standalone(master_url) = &master.target else {
            unreachable!("a standalone server")
        };
        let master_port = port_of(master_url);
        let replica = TestReplica::start(&master, true).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sentinels = Vec::new();
        let mut sentinel_ports = Vec::new();
        for index in 0..3 {
            let (port, process) = spawn_sentinel(dir.path(), index, master_port).await;
            sentinel_ports.push(port);
            sentinels.push(process);
        }
        let set = Self {
            redis: TestRedis::external(RedisTarget::Sentinel(SentinelTarget {
                sentinels: sentinel_ports
                    .iter()
                    .map(|p| format!("127.0.0.1:{p}"))
                    .collect(),
                master: MASTER_NAME.to_owned(),
                username: None,
                password: None,
                sentinel_password: None,
            })),
            master,
            master_port,
            replica,
            sentinel_ports,
            _sentinels: sentinels,
            _dir: dir,
        };
        set.settled(1).await;
        set
    }

    /// Waits until every sentinel knows the two others and `replicas` replicas of the master,
    /// none of them down: a failover needs the votes, and a replica to promote.
    pub async fn settled(&self, replicas: usize) {
        let replicas = replicas.to_string();
        self.every_sentinel(
            |master| {
                let field = |name: &str| master.get(name).cloned().unwrap_or_default();
                let (others, known, flags) = (
                    field("num-other-sentinels"),
                    field("num-slaves"),
                    field("flags"),
                );
                (others == "2" && known == replicas && flags == "master")
                    .then_some(())
                    .ok_or(format!(
                        "{others} other sentinels, {known} replicas, {flags}"
                    ))
            },
            "the sentinels to know one another and the replica",
        )
        .await;
    }

    /// Waits until `check` holds for what every sentinel says of the master (`SENTINEL
    /// MASTER`), one sentinel after the other.
    async fn every_sentinel(
        &self,
        check: impl Fn(&HashMap<String, String>) -> Result<(), String>,
        what: &str,
    ) {
        for port in &self.sentinel_ports {
            eventually_within(
                SETTLE,
                async || {
                    let master = sentinel_master(*port).await?;
                    check(&master).map_err(|why| format!("sentinel {port}: {why}"))
                },
                what,
            )
            .await;
        }
    }

    /// The port of the master every sentinel names now.
    pub async fn named_master(&self) -> Result<u16, String> {
        let mut named = Vec::new();
        for port in &self.sentinel_ports {
            let address: (String, u16) = query(
                *port,
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(MASTER_NAME),
            )
            .await
            .map_err(|e| e.to_string())?;
            named.push(address.1);
        }
        named.dedup();
        match named[..] {
            [one] => Ok(one),
            _ => Err(format!("the sentinels disagree: {named:?}")),
        }
    }

    /// Restarts the killed first master (empty) and waits until the sentinels made it a
    /// replica of the new master, in sync: so that the set has a replica again.
    pub async fn restart_old_master(&mut self) {
        let new_master = self.replica.port;
        // Started as its replica at once: left to the sentinels, a master that comes back is
        // converted only after their next look at it (~15 s here), longer than the test's
        // recovery bound, and it is how an operator brings a dead master back.
        let new = new_master.to_string();
        // Only once every sentinel has finished the failover: an instance that comes back while
        // one is still under way is a candidate of its own. Seen here when the master died a
        // second after its replica was cut off: a sentinel promoted the restarted, empty old
        // master over the one holding the data, and made that one its replica.
        self.every_sentinel(
            |master| {
                let field = |name: &str| master.get(name).cloned().unwrap_or_default();
                let (at, flags) = (field("port"), field("flags"));
                (at == new && flags == "master")
                    .then_some(())
                    .ok_or(format!("master {at}, {flags}"))
            },
            "every sentinel to finish the failover",
        )
        .await;
        self.master
            .restart_with(&["--replicaof", "127.0.0.1", &new])
            .await;
        eventually_within(
            SETTLE,
            async || {
                let info: String = query(self.master_port, redis::cmd("INFO").arg("replication"))
                    .await
                    .map_err(|e| e.to_string())?;
                let linked = info.contains(&format!("master_port:{new_master}"))
                    && info.contains("master_link_status:up");
                match connected_replicas(new_master).await {
                    Ok(n) if linked && n >= 1 => Ok(()),
                    other => Err(format!("linked {linked}, new master counts {other:?}")),
                }
            },
            "the old master to be back as a replica of the new one",
        )
        .await;
    }

    /// A direct view of the Redis on `port` (the histories it holds).
    pub fn on(port: u16) -> TestRedis {
        TestRedis::external(RedisTarget::Standalone(url(port)))
    }
}

/// A sentinel watching the master on `master_port`; its port and process.
async fn spawn_sentinel(dir: &std::path::Path, index: usize, master_port: u16) -> (u16, Child) {
    for _ in 0..5 {
        let port = free_port();
        let conf = dir.join(format!("sentinel-{index}.conf"));
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n",
            dir = dir.display(),
        );
        tokio::fs::write(&conf, text)
            .await
            .expect("sentinel conf written");
        let mut process = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (see README)");
        if answers_as(&url(port), &mut process).await {
            return (port, process);
        }
    }
    panic!("could not start a sentinel");
}

/// What the sentinel on `port` knows of the master (`SENTINEL MASTER`).
async fn sentinel_master(port: u16) -> Result<HashMap<String, String>, String> {
    query(port, redis::cmd("SENTINEL").arg("MASTER").arg(MASTER_NAME))
        .await
        .map_err(|e| e.to_string())
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("a port in {url}"))
}

/// What a node is given to reach sentinels that are not there: free ports nobody listens on.
pub fn unreachable_sentinels() -> TestRedis {
    TestRedis::external(RedisTarget::Sentinel(SentinelTarget {
        sentinels: (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect(),
        master: MASTER_NAME.to_owned(),
        username: None,
        password: None,
        sentinel_password: None,
    }))
}
