//! A replica of a test's standalone redis-server: its own process on a free port in a temporary
//! folder, `--replicaof` the master. It can log in to the master as a user of its own, so that a
//! test can cut the replication link for as long as it likes (`ACL SETUSER <user> off` and
//! `CLIENT KILL USER <user>` on the master: the replica cannot log in again) and restore it,
//! while the master itself keeps serving.

use std::time::Duration;

use privmsg::store::RedisTarget;
use tokio::process::Child;

use super::{
    TestRedis,
    cluster::{query, url},
    redis_server::{answers_as, free_port, spawn_redis},
    wait::eventually_within,
};

/// How long a replica has to load the master's data and report its link up.
const SYNC: Duration = Duration::from_secs(30);

/// The user a cut-off-able replica logs in as, and its password (test-only).
pub const REPLICATION_USER: &str = "replication";
pub const REPLICATION_PASSWORD: &str = "replication-secret";
/// The password as `ACL SETUSER` and the `user` directive take it.
pub const REPLICATION_ACL_PASSWORD: &str = ">replication-secret";

pub struct TestReplica {
    pub port: u16,
    master: String,
    /// The user it logs in to the master as, when it can be cut off.
    user: Option<&'static str>,
    _process: Child,
    _dir: tempfile::TempDir,
}

impl TestReplica {
    /// A replica of `master` (a standalone server this suite started), in sync when this
    /// returns. With `cut_off_able`, it logs in to the master as [`REPLICATION_USER`], created
    /// on the master here, so that [`TestReplica::cut`] can lock it out.
    pub async fn start(master: &TestRedis, cut_off_able: bool) -> Self {
        let RedisTarget::Standalone(master_url) = &master.target else {
            panic!("a replica of a standalone server");
        };
        let master_port = port_of(master_url);
        let user = cut_off_able.then_some(REPLICATION_USER);
        if let Some(user) = user {
            query::<()>(
                master_port,
                redis::cmd("ACL")
                    .arg("SETUSER")
                    .arg(user)
                    .arg("on")
                    .arg(REPLICATION_ACL_PASSWORD)
                    .arg("~*")
                    .arg("&*")
                    .arg("+@all"),
            )
            .await
            .expect("ACL SETUSER on the master");
        }
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let master_port = master_port.to_string();
            let mut args = vec!["--replicaof", "127.0.0.1", master_port.as_str()];
            if let Some(user) = user {
                args.extend(["--masteruser", user, "--masterauth", REPLICATION_PASSWORD]);
            }
            let mut process = spawn_redis(port, dir.path(), &args);
            if answers_as(&url(port), &mut process).await {
                let replica = Self {
                    port,
                    master: master_url.clone(),
                    user,
                    _process: process,
                    _dir: dir,
                };
                replica.linked().await;
                return replica;
            }
        }
        panic!("could not start a replica");
    }

    /// Cuts the replication link and keeps it cut: the replica's user is disabled on the
    /// master and its connection killed, so its reconnection attempts fail until
    /// [`TestReplica::restore`]. Returns once the master counts no replica.
    pub async fn cut(&self) {
        let user = self.user.expect("a replica started cut-off-able");
        let master = port_of(&self.master);
        query::<()>(
            master,
            redis::cmd("ACL").arg("SETUSER").arg(user).arg("off"),
        )
        .await
        .expect("ACL SETUSER off");
        query::<()>(
            master,
            redis::cmd("CLIENT").arg("KILL").arg("USER").arg(user),
        )
        .await
        .expect("CLIENT KILL USER");
        eventually_within(
            SYNC,
            async || connected_replicas(master).await == Ok(0),
            "the master to count no replica",
        )
        .await;
    }

    /// Lets the replica log in again; returns once it is back in sync.
    pub async fn restore(&self) {
        let user = self.user.expect("a replica started cut-off-able");
        let master = port_of(&self.master);
        query::<()>(master, redis::cmd("ACL").arg("SETUSER").arg(user).arg("on"))
            .await
            .expect("ACL SETUSER on");
        self.linked().await;
    }

    /// Waits until the replica reports its link up and the master counts it.
    pub async fn linked(&self) {
        let master = port_of(&self.master);
        eventually_within(
            SYNC,
            async || {
                let info: String = query(self.port, redis::cmd("INFO").arg("replication"))
                    .await
                    .map_err(|e| e.to_string())?;
                if !info.contains("master_link_status:up") {
                    return Err("replica link down".to_string());
                }
                match connected_replicas(master).await {
                    Ok(n) if n >= 1 => Ok(()),
                    other => Err(format!("master counts {other:?} replicas")),
                }
            },
            "the replica to be in sync",
        )
        .await;
    }

    /// A direct connection to the replica, to check what it holds.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(url(self.port))
            .expect("a client of the replica")
            .get_multiplexed_async_connection()
            .await
            .expect("the replica answers")
    }
}

/// `connected_slaves` in the `INFO replication` of the server on `port`.
pub async fn connected_replicas(port: u16) -> Result<u64, String> {
    let info: String = query(port, redis::cmd("INFO").arg("replication"))
        .await
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("connected_slaves:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| "no connected_slaves line".to_string())
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("a port in {url}"))
}
