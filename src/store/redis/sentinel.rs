//! Redis Sentinel: a third way to find a standalone master (REDIS_SENTINELS), chosen once at
//! start. The master is looked up through redis-rs's `SentinelClient` (which asks the
//! sentinels and checks with `ROLE` that the address they name is a master) each time a
//! connection is opened: the data pool's ([`Manager`]) and the pub/sub connections' (see
//! `pubsub::connection`). After a failover those connections fail (the old master is gone, or
//! answers READONLY as a replica); they are dropped and the next one finds the new master.
//!
//! [`SentinelWatch`] asks the sentinels every second whether they know the master, for
//! `/readyz` and the logs: a node whose sentinels are all gone cannot follow the next failover.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use deadpool::managed::{self, RecycleError, RecycleResult};
use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion,
    RedisConnectionInfo, RedisResult, aio::MultiplexedConnection, sentinel,
};

use super::RESPONSE_TIMEOUT;

/// Where the sentinels are and what they call the master: REDIS_SENTINELS and its settings.
#[derive(Clone)]
pub struct SentinelTarget {
    /// `host:port` of each sentinel.
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the master under (REDIS_SENTINEL_MASTER).
    pub master: String,
    /// The master's (and its replicas') ACL user and password, if it requires them.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sentinels' own password (`requirepass` in their configuration), if any.
    pub sentinel_password: Option<String>,
}

/// Passwords never reach a log.
impl std::fmt::Debug for SentinelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentinel")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl SentinelTarget {
    /// A client of redis-rs that finds the master through the sentinels; `protocol` is the one
    /// the master's connections speak (RESP3 for pub/sub pushes).
    fn client(&self, protocol: ProtocolVersion) -> RedisResult<sentinel::SentinelClient> {
        let mut master = RedisConnectionInfo::default().set_protocol(protocol);
        if let Some(username) = &self.username {
            master = master.set_username(username);
        }
        if let Some(password) = &self.password {
            master = master.set_password(password);
        }
        let node =
            sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(master);
        sentinel::SentinelClient::build(
            self.sentinel_infos()?,
            self.master.clone(),
            Some(node),
            sentinel::SentinelServerType::Master,
        )
    }

    fn sentinel_infos(&self) -> RedisResult<Vec<ConnectionInfo>> {
        self.sentinels
            .iter()
            .map(|address| {
                let info = format!("redis://{address}").into_connection_info()?;
                Ok(match &self.sentinel_password {
                    Some(password) => {
                        let redis = info.redis_settings().clone().set_password(password);
                        info.set_redis_settings(redis)
                    }
                    None => info,
                })
            })
            .collect()
    }

    /// The master the sentinels name now, checked to be one: a client to connect to it.
    pub(crate) async fn master(&self, protocol: ProtocolVersion) -> RedisResult<Client> {
        self.client(protocol)?.async_get_client().await
    }
}

/// The data pool's connections (deadpool), each opened on the master the sentinels name when
/// it is opened. deadpool-redis's own Sentinel manager is not used: its connections keep
/// redis-rs's default reply timeout of 500 ms, which under load turns writes that Redis does
/// perform into errors (see `RESPONSE_TIMEOUT`).
pub(super) struct Manager {
    target: SentinelTarget,
    connection: AsyncConnectionConfig,
}

impl Manager {
    pub(super) fn new(target: SentinelTarget, connection: AsyncConnectionConfig) -> Self {
        Self { target, connection }
    }
}

impl managed::Manager for Manager {
    type Type = MultiplexedConnection;
    type Error = redis::RedisError;

    async fn create(&self) -> RedisResult<MultiplexedConnection> {
        let master = self.target.master(ProtocolVersion::RESP2).await?;
        master
            .get_multiplexed_async_connection_with_config(&self.connection)
            .await
    }

    /// A connection handed out again must still reach the master: after a failover the old
    /// one may be back as a replica, where every write would answer READONLY.
    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        _: &managed::Metrics,
    ) -> RecycleResult<redis::RedisError> {
        if is_master(conn).await? {
            Ok(())
        } else {
            Err(RecycleError::message("no longer the master"))
        }
    }
}

pub(super) type Pool = managed::Pool<Manager>;
pub(super) type Lease = managed::Object<Manager>;

/// Whether the Redis at the other end of `conn` is a master (`ROLE`).
pub(super) async fn is_master<C: redis::aio::ConnectionLike>(conn: &mut C) -> RedisResult<bool> {
    let role: redis::Role = redis::cmd("ROLE").query_async(conn).await?;
    Ok(matches!(role, redis::Role::Primary { .. }))
}

/// How often the sentinels are asked.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long one sentinel may take to answer (a dead one on a live host refuses at once).
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether at least one sentinel answers and knows the master, asked every second by a task
/// that lives as long as a clone of this does.
#[derive(Clone)]
pub struct SentinelWatch {
    up: Arc<AtomicBool>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SentinelWatch {
    /// Starts watching. Must be called on the runtime (the task is spawned on it).
    pub fn start(target: &SentinelTarget) -> Self {
        let up = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(watch(target.clone(), up.clone()));
        Self {
            up,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// False while no sentinel answered the last question.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

async fn watch(target: SentinelTarget, up: Arc<AtomicBool>) {
    let infos = match target.sentinel_infos() {
        Ok(infos) => infos,
        Err(err) => {
            tracing::error!(%err, "REDIS_SENTINELS: an address cannot be used");
            up.store(false, Ordering::Release);
            return;
        }
    };
    // One connection per sentinel, kept while it works.
    let mut conns: Vec<Option<MultiplexedConnection>> = vec![None; infos.len()];
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut answered = false;
        let mut last_err = None;
        for (info, conn) in infos.iter().zip(conns.iter_mut()) {
            match ask(info, conn, &target.master).await {
                Ok(()) => {
                    answered = true;
                    break;
                }
                Err(err) => {
                    *conn = None;
                    last_err = Some(err);
                }
            }
        }
        let was_up = up.swap(answered, Ordering::AcqRel);
        if was_up && !answered {
            // The addresses are public; the passwords are not in them.
            tracing::error!(
                sentinels = ?target.sentinels,
                master = %target.master,
                last_error = %last_err.unwrap_or_else(|| "none".to_owned()),
                "no Redis Sentinel answers: this node cannot follow a failover"
            );
        } else if answered && !was_up {
            tracing::info!("a Redis Sentinel answers again");
        }
    }
}

/// Asks one sentinel where the master is: fails when it does not answer or does not know it.
async fn ask(
    info: &ConnectionInfo,
    conn: &mut Option<MultiplexedConnection>,
    master: &str,
) -> Result<(), String> {
    let question = async {
        if conn.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(SENTINEL_TIMEOUT))
                .set_response_timeout(Some(SENTINEL_TIMEOUT));
            let client = Client::open(info.clone())?;
            *conn = Some(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            );
        }
        let Some(open) = conn.as_mut() else {
            return Ok(None);
        };
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(master)
            .query_async::<Option<(String, u16)>>(open)
            .await
    };
    match tokio::time::timeout(SENTINEL_TIMEOUT * 2, question).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(format!("a sentinel does not know the master {master:?}")),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("a sentinel did not answer in time".to_owned()),
    }
}

/// How long a reply may take on the master's connections (as for a standalone Redis).
pub(super) fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}
