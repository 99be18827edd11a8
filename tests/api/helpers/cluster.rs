//! A Redis Cluster that a test takes down and brings back: each node keeps its data (an
//! append-only file, fsync on every write) and its cluster config (`nodes.conf`) in a folder of
//! its own, so a node stopped and started again on the same port rejoins as it was. Masters can
//! have replicas, for failovers; a slot can be moved from one master to another.

use std::{path::PathBuf, time::Duration};

use privmsg::store::RedisTarget;
use redis::{FromRedisValue, RedisResult};
use tokio::process::{Child, Command};

use super::{
    TestRedis,
    redis_server::{answers_as, free_port, run, spawn_redis},
    replica::{
        REPLICATION_ACL_PASSWORD, REPLICATION_PASSWORD, REPLICATION_USER, connected_replicas,
    },
    wait::eventually_within,
};

/// How long a master may be unreachable before the others call it failed and promote its
/// replica: short, so that a failover takes a few seconds, yet well above the pauses a busy
/// test machine causes.
const NODE_TIMEOUT_MS: &str = "3000";

/// How long the cluster has to settle after a change (a restart, a failover).
const SETTLE: Duration = Duration::from_secs(30);

/// Every node also knows the replication user (on, until a test locks it out of one master
/// with [`TestCluster::cut_replicas`]) and its replicas log in as it, so that a test can cut a
/// master's replicas off while the cluster bus, and so the cluster, carries on.
const NODE_ARGS: &[&str] = &[
    "--user",
    REPLICATION_USER,
    "on",
    REPLICATION_ACL_PASSWORD,
    "~*",
    "&*",
    "+@all",
    "--masteruser",
    REPLICATION_USER,
    "--masterauth",
    REPLICATION_PASSWORD,
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    NODE_TIMEOUT_MS,
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

pub struct TestCluster {
    /// What the server nodes are given (every node as a seed) and what a test reads back from.
    pub redis: TestRedis,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

struct Node {
    port: u16,
    dir: PathBuf,
    /// `None` while the node is stopped.
    process: Option<Child>,
}

impl Node {
    /// Starts the node's redis-server; false when another process answers on its port.
    async fn start(&mut self) -> bool {
        let mut process = spawn_redis(self.port, &self.dir, NODE_ARGS);
        let answers = answers_as(&url(self.port), &mut process).await;
        self.process = Some(process);
        answers
    }
}

/// One line of `CLUSTER NODES`, as far as the tests need it.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub port: u16,
    pub master: bool,
    /// Marked failed (`fail` or `fail?`) by the node that was asked.
    pub failing: bool,
    slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    fn owns(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&slot))
    }
}

impl TestCluster {
    /// Three masters with `replicas` replicas each, every node durable.
    pub async fn start(replicas: usize) -> Self {
        for _ in 0..5 {
            if let Some(cluster) = Self::spawn(replicas).await {
                return cluster;
            }
        }
        panic!("could not start a Redis Cluster");
    }

    /// `None` if a port was taken meanwhile.
    async fn spawn(replicas: usize) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut nodes = Vec::new();
        for _ in 0..3 * (1 + replicas) {
            let port = free_port();
            let node_dir = dir.path().join(port.to_string());
            tokio::fs::create_dir_all(&node_dir)
                .await
                .expect("node dir");
            let mut node = Node {
                port,
                dir: node_dir,
                process: None,
            };
            if !node.start().await {
                return None;
            }
            nodes.push(node);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        run(Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]))
        .await;
        let seeds = addresses.iter().map(|a| format!("redis://{a}")).collect();
        let cluster = Self {
            redis: TestRedis::external(RedisTarget::Cluster(seeds)),
            nodes,
            _dir: dir,
        };
        cluster.settled().await;
        Some(cluster)
    }

    /// Stops every node with `SHUTDOWN SAVE`, as an operator would, and returns once all have
    /// exited (their ports are free to start again).
    pub async fn stop_all(&mut self) {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        for port in ports {
            self.stop(port).await;
        }
    }

    /// Starts every stopped node on its port with its data; returns once each answers (the
    /// cluster is whole again a little later: [`TestCluster::settled`]).
    pub async fn start_all(&mut self) {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        for port in ports {
            if self.node(port).process.is_none() {
                self.start_node(port).await;
            }
        }
    }

    /// `SHUTDOWN SAVE` on one node; returns once it has exited.
    pub async fn stop(&mut self, port: u16) {
        let node = self.node_mut(port);
        let Some(mut process) = node.process.take() else {
            return;
        };
        // The node closes the connection instead of answering.
        let _ = query::<()>(port, redis::cmd("SHUTDOWN").arg("SAVE")).await;
        let _ = process.wait().await;
    }

    /// SIGKILL, as in a crash: nothing saved beyond what the append-only file already holds.
    pub async fn crash(&mut self, port: u16) {
        let node = self.node_mut(port);
        if let Some(mut process) = node.process.take() {
            let _ = process.kill().await;
        }
    }

    /// Starts one stopped node again, on its port, with its data and cluster config.
    pub async fn start_node(&mut self, port: u16) {
        let node = self.node_mut(port);
        assert!(node.start().await, "redis-server restarted on port {port}");
    }

    /// Waits until every running node says `cluster_state:ok`: the cluster serves every slot
    /// again (a restarted master takes about 2 s to say so).
    pub async fn serving(&self) {
        eventually_within(
            SETTLE,
            async || self.cluster_ok().await,
            "the cluster to serve every slot",
        )
        .await;
    }

    /// `Ok` when every running node says `cluster_state:ok`.
    async fn cluster_ok(&self) -> Result<(), String> {
        for port in self.running() {
            let info: String = query(port, redis::cmd("CLUSTER").arg("INFO"))
                .await
                .map_err(|e| format!("{port}: {e}"))?;
            if !info.contains("cluster_state:ok") {
                return Err(format!("{port}: cluster not ok"));
            }
        }
        Ok(())
    }

    /// Waits until every running node sees the cluster as ok, with no node marked failed and
    /// every replica in sync with its master.
    pub async fn settled(&self) {
        eventually_within(
            SETTLE,
            async || {
                self.cluster_ok().await?;
                for port in self.running() {
                    let nodes = self.nodes_seen_by(port).await?;
                    if let Some(failing) = nodes.iter().find(|n| n.failing) {
                        return Err(format!("{port} sees {} failing", failing.port));
                    }
                    let replication: String = query(port, redis::cmd("INFO").arg("replication"))
                        .await
                        .map_err(|e| e.to_string())?;
                    if replication.contains("role:slave")
                        && !replication.contains("master_link_status:up")
                    {
                        return Err(format!("replica {port} not in sync"));
                    }
                }
                Ok(())
            },
            "the cluster to settle",
        )
        .await;
    }

    /// The slot of `key` (a key or a sharded channel).
    pub async fn slot(&self, key: &str) -> u16 {
        let port = self.running().next().expect("a running node");
        query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .expect("CLUSTER KEYSLOT")
    }

    /// The port of the master that serves `slot`, as a running node sees it.
    pub async fn owner(&self, slot: u16) -> u16 {
        let port = self.running().next().expect("a running node");
        let nodes = self.nodes_seen_by(port).await.expect("CLUSTER NODES");
        nodes
            .iter()
            .find(|n| n.master && n.owns(slot))
            .unwrap_or_else(|| panic!("no master serves slot {slot}: {nodes:?}"))
            .port
    }

    /// The masters, as a running node sees them.
    pub async fn masters(&self) -> Vec<ClusterNode> {
        let port = self.running().next().expect("a running node");
        let nodes = self.nodes_seen_by(port).await.expect("CLUSTER NODES");
        nodes.into_iter().filter(|n| n.master).collect()
    }

    /// Waits until `replica` has every write its master has acknowledged, so that a crash of
    /// the master loses nothing (Redis replicates asynchronously).
    pub async fn caught_up(&self, master: u16) {
        eventually_within(
            SETTLE,
            async || {
                let offset = |info: &str, field: &str| {
                    info.lines()
                        .find_map(|l| l.strip_prefix(field))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                let info: String = query(master, redis::cmd("INFO").arg("replication"))
                    .await
                    .map_err(|e| e.to_string())?;
                let ours = offset(&info, "master_repl_offset:");
                // slave0:ip=127.0.0.1,port=...,state=online,offset=...,lag=0
                let theirs = info
                    .lines()
                    .find(|l| l.starts_with("slave0:"))
                    .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("offset=")))
                    .and_then(|v| v.parse::<u64>().ok());
                match (ours, theirs) {
                    (Some(a), Some(b)) if a == b => Ok(()),
                    other => Err(format!("offsets {other:?}")),
                }
            },
            "the replica to catch up",
        )
        .await;
    }

    /// Waits until a master other than `old` serves `slot` and every running node agrees;
    /// returns its port.
    pub async fn promoted(&self, slot: u16, old: u16) -> u16 {
        eventually_within(
            SETTLE,
            async || {
                let mut owners = Vec::new();
                for port in self.running() {
                    let nodes = self.nodes_seen_by(port).await?;
                    let owner = nodes
                        .iter()
                        .find(|n| n.master && !n.failing && n.owns(slot));
                    owners.push(owner.map(|n| n.port));
                }
                match owners.first() {
                    Some(Some(new)) if *new != old && owners.iter().all(|o| *o == Some(*new)) => {
                        Ok(*new)
                    }
                    _ => Err(format!("owners of slot {slot}: {owners:?}")),
                }
            },
            "a replica to be promoted",
        )
        .await
    }

    /// Starts moving `slot` to the master on port `to` (`CLUSTER SETSLOT ... IMPORTING` /
    /// `MIGRATING`), as `redis-cli --cluster reshard` does; [`TestCluster::finish_migration`]
    /// moves the keys and hands the slot over.
    pub async fn begin_migration(&self, slot: u16, to: u16) -> Migration {
        let from = self.owner(slot).await;
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let (from_id, to_id) = (self.id(from).await, self.id(to).await);
        setslot(to, slot, "IMPORTING", &from_id).await;
        setslot(from, slot, "MIGRATING", &to_id).await;
        Migration {
            slot,
            from,
            to,
            to_id,
        }
    }

    /// Moves every key of the slot, then assigns the slot to its new master on every master.
    pub async fn finish_migration(&self, migration: Migration) {
        let Migration {
            slot,
            from,
            to,
            to_id,
        } = migration;
        loop {
            let keys: Vec<String> = query(
                from,
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(100),
            )
            .await
            .expect("GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            query::<()>(
                from,
                redis::cmd("MIGRATE")
                    .arg("127.0.0.1")
                    .arg(to)
                    .arg("")
                    .arg(0)
                    .arg(5000)
                    .arg("KEYS")
                    .arg(&keys),
            )
            .await
            .expect("MIGRATE");
        }
        // The new owner first, then the old one, then the others, as redis-cli does.
        setslot(to, slot, "NODE", &to_id).await;
        setslot(from, slot, "NODE", &to_id).await;
        for master in self.masters().await {
            if master.port != to && master.port != from {
                setslot(master.port, slot, "NODE", &to_id).await;
            }
        }
        eventually_within(
            SETTLE,
            async || {
                for port in self.running() {
                    let nodes = self.nodes_seen_by(port).await?;
                    let owner = nodes.iter().find(|n| n.master && n.owns(slot));
                    if owner.map(|n| n.port) != Some(to) {
                        return Err(format!("{port} does not see slot {slot} on {to} yet"));
                    }
                }
                Ok(())
            },
            "every node to see the slot's new owner",
        )
        .await;
    }

    async fn id(&self, port: u16) -> String {
        query(port, redis::cmd("CLUSTER").arg("MYID"))
            .await
            .expect("CLUSTER MYID")
    }

    async fn nodes_seen_by(&self, port: u16) -> Result<Vec<ClusterNode>, String> {
        let text: String = query(port, redis::cmd("CLUSTER").arg("NODES"))
            .await
            .map_err(|e| format!("{port}: {e}"))?;
        Ok(text.lines().filter_map(parse_node).collect())
    }

    fn running(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|n| n.process.is_some())
            .map(|n| n.port)
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }
}

/// A master that takes no write (reads go on) until the test lifts the pause: long enough
/// never to run out on its own while a busy machine is slow to reach the step that lifts it.
pub struct PausedWrites {
    conn: redis::aio::MultiplexedConnection,
}

impl PausedWrites {
    /// Lets the master take writes again (the writes it held run then).
    pub async fn lift(mut self) {
        redis::cmd("CLIENT")
            .arg("UNPAUSE")
            .query_async::<()>(&mut self.conn)
            .await
            .expect("CLIENT UNPAUSE");
    }
}

impl TestCluster {
    /// `CLIENT PAUSE 600000 WRITE` on the master on `port`, until [`PausedWrites::lift`].
    pub async fn pause_writes(&self, port: u16) -> PausedWrites {
        let mut conn = redis::Client::open(url(port))
            .expect("a client of one master")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to one master");
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(600_000)
            .arg("WRITE")
            .query_async::<()>(&mut conn)
            .await
            .expect("CLIENT PAUSE");
        PausedWrites { conn }
    }
}

impl TestCluster {
    /// Cuts the master on `port` off from its replicas, and keeps it so: the replication user
    /// is disabled on that master and its connections killed (the replicas' attempts to log in
    /// again fail), while the cluster bus carries on, so nobody fails over. What the master
    /// takes from now on reaches no replica. A restart of the master (its command line enables
    /// the user again) or [`TestCluster::restore_replicas`] ends it.
    pub async fn cut_replicas(&self, port: u16) {
        let user = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(REPLICATION_USER)
            .arg("off")
            .clone();
        query::<()>(port, &user).await.expect("ACL SETUSER off");
        let kill = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("USER")
            .arg(REPLICATION_USER)
            .clone();
        query::<()>(port, &kill).await.expect("CLIENT KILL USER");
        eventually_within(
            SETTLE,
            async || connected_replicas(port).await == Ok(0),
            "the master to count no replica",
        )
        .await;
    }

    /// Lets the replicas of the master on `port` log in again.
    pub async fn restore_replicas(&self, port: u16) {
        let user = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(REPLICATION_USER)
            .arg("on")
            .clone();
        query::<()>(port, &user).await.expect("ACL SETUSER on");
    }
}

/// A slot on its way from one master to another.
pub struct Migration {
    slot: u16,
    from: u16,
    to: u16,
    to_id: String,
}

async fn setslot(port: u16, slot: u16, state: &str, node_id: &str) {
    query::<()>(
        port,
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(node_id),
    )
    .await
    .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} {state} on {port}: {e}"));
}

/// `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
fn parse_node(line: &str) -> Option<ClusterNode> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = fields
        .get(1)?
        .split(['@', ','])
        .next()?
        .rsplit(':')
        .next()?;
    let flags = fields.get(2)?;
    let slots = fields
        .iter()
        .skip(8)
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
            None => s.parse().ok().map(|one| (one, one)),
        })
        .collect();
    Some(ClusterNode {
        port: port.parse().ok()?,
        master: flags.split(',').any(|f| f == "master"),
        failing: flags.split(',').any(|f| f == "fail" || f == "fail?"),
        slots,
    })
}

pub(super) fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// One command to one node, on a connection of its own.
pub(super) async fn query<T: FromRedisValue>(port: u16, cmd: &redis::Cmd) -> RedisResult<T> {
    let client = redis::Client::open(url(port))?;
    let connect = client.get_multiplexed_async_connection();
    let mut conn = tokio::time::timeout(Duration::from_secs(2), connect)
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
        })??;
    cmd.query_async(&mut conn).await
}
