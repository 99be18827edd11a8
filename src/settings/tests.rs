//! The settings refuse what they cannot run with, naming the setting.
use super::*;

#[test]
fn out_of_range_settings_refuse_to_start_naming_the_setting() {
    for (flag, value) in [
        ("--session-ttl-secs", "0"),
        ("--message-ttl-secs", "0"),
        ("--history-cap", "0"),
        ("--max-socket-buffer", "0"),
        ("--max-pending-messages", "0"),
        ("--max-sockets-per-user", "0"),
        ("--redis-pool-size", "0"),
        ("--node-ttl-secs", "1"),
        ("--directory-resync-secs", "0"),
        ("--directory-resync-secs", "3601"),
        ("--index-upkeep-delay-secs", "3601"),
        ("--index-upkeep-delay-secs", "-1"),
        ("--max-payload-bytes", "10"),
        ("--rate-limit-per-sec", "-1"),
        ("--rate-limit-burst", "0.5"),
        ("--rate-limit-per-sec", "NaN"),
        ("--history-on-connect", "-1"),
        ("--history-on-connect", "some"),
        ("--jwt-leeway-secs", "3601"),
        ("--auth", "password"),
        ("--store-batch-delay-us", "10001"),
        ("--redis-sentinels", "10.0.0.1"),
        ("--redis-sentinels", "10.0.0.1:0"),
        ("--redis-sentinels", "10.0.0.1:70000"),
        ("--redis-sentinels", "redis://:pw@10.0.0.1:26379"),
        ("--redis-sentinel-master", " "),
    ] {
        let refused = Settings::try_parse_from(["privmsg-server", &format!("{flag}={value}")])
            .expect_err("out of range");
        assert!(
            refused.to_string().contains(flag),
            "{flag}={value}: {refused}"
        );
    }
}

#[test]
fn a_message_limit_that_does_not_fit_in_a_payload_is_refused() {
    let settings = Settings::parse_from([
        "privmsg-server",
        "--max-message-bytes",
        "2000",
        "--max-payload-bytes",
        "2000",
    ]);
    let refused = settings.validate().expect_err("does not fit");
    assert!(refused.contains("--max-message-bytes"), "{refused}");
    assert!(Settings::defaults().validate().is_ok());
}

#[test]
fn the_users_scope_defaults_to_all_and_refuses_anything_else() {
    assert_eq!(Settings::defaults().users_scope, UsersScope::All);
    let contacts = Settings::parse_from(["privmsg-server", "--users-scope", "contacts"]);
    assert_eq!(contacts.users_scope, UsersScope::Contacts);
    let refused = Settings::try_parse_from(["privmsg-server", "--users-scope=friends"])
        .expect_err("not a scope");
    assert!(refused.to_string().contains("--users-scope"), "{refused}");
}

#[test]
fn debug_output_never_shows_a_redis_password() {
    let settings = Settings::parse_from([
        "privmsg-server",
        "--redis-url",
        "rediss://:hunter2@10.0.0.1:6380",
        "--redis-cluster-nodes",
        "redis://:hunter3@10.0.0.2:7000",
    ]);
    let shown = format!("{settings:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("hunter3"),
        "{shown}"
    );
    assert!(shown.contains("10.0.0.1:6380"), "{shown}");
}

#[test]
fn trusted_proxies_take_addresses_and_blocks_and_metrics_can_be_turned_off() {
    let settings = Settings::parse_from([
        "privmsg-server",
        "--trusted-proxies",
        "127.0.0.1, 10.0.0.0/8,::1",
        "--metrics-addr",
        "off",
    ]);
    let proxies: Vec<String> = settings
        .trusted_proxies
        .nets()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(proxies, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
    assert_eq!(settings.metrics_addr, Some(MetricsAddr(None)));
    assert_eq!(settings.metrics_listen_addr(), Ok(None));
    let defaults = Settings::defaults();
    assert!(defaults.trusted_proxies.nets().is_empty());
    let blank = Settings::parse_from(["privmsg-server", "--trusted-proxies="]);
    assert!(blank.trusted_proxies.nets().is_empty());
    assert_eq!(defaults.metrics_addr, None);
    assert_eq!(
        defaults.metrics_listen_addr(),
        Ok(Some("127.0.0.1:9091".parse().unwrap()))
    );
}

#[test]
fn metrics_default_to_port_plus_6091_on_loopback_and_refuse_a_port_without_room() {
    let listen = |args: &[&str]| {
        let settings = Settings::parse_from([&["privmsg-server"], args].concat());
        settings.validate().map(|()| settings.metrics_listen_addr())
    };
    let on = |addr: &str| Ok(Ok(Some(addr.parse().unwrap())));
    assert_eq!(listen(&["--port", "3001"]), on("127.0.0.1:9092"));
    assert_eq!(listen(&["--port", "3002"]), on("127.0.0.1:9093"));
    assert_eq!(listen(&["--port", "0"]), on("127.0.0.1:0"));
    assert_eq!(listen(&["--port", "59444"]), on("127.0.0.1:65535"));
    // Set, METRICS_ADDR is taken as it is, whatever PORT.
    let set = ["--port", "60000", "--metrics-addr", "0.0.0.0:9091"];
    assert_eq!(listen(&set), on("0.0.0.0:9091"));
    let off = ["--port", "60000", "--metrics-addr", "off"];
    assert_eq!(listen(&off), Ok(Ok(None)));

    let refused = listen(&["--port", "59445"]).expect_err("no room above PORT");
    assert!(refused.contains("METRICS_ADDR"), "{refused}");
}

#[test]
fn help_shows_the_range_of_every_abuse_limit() {
    let help = <Settings as clap::CommandFactory>::command()
        .render_long_help()
        .to_string();
    for shown in [
        "1 to 1000000",
        "MAX_CONNECTIONS",
        "TRUSTED_PROXIES",
        "METRICS_ADDR",
        "PORT + 6091",
    ] {
        assert!(help.contains(shown), "{shown} missing from --help:\n{help}");
    }
}

#[test]
fn history_on_connect_is_all_or_a_number() {
    let parse = |raw: &str| {
        Settings::try_parse_from(["privmsg-server", &format!("--history-on-connect={raw}")])
            .expect("valid")
            .history_on_connect
    };
    assert_eq!(parse("all"), HistoryOnConnect(None));
    assert_eq!(parse("0"), HistoryOnConnect(Some(0)));
    assert_eq!(parse("20"), HistoryOnConnect(Some(20)));
    assert_eq!(
        Settings::defaults().history_on_connect,
        HistoryOnConnect(None)
    );
}

#[test]
fn the_jwt_secret_is_never_printed() {
    let settings = Settings::parse_from([
        "privmsg-server",
        "--jwt-secret",
        "s3cret-s3cret-s3cret-s3cret-s3cret",
    ]);
    assert!(!format!("{settings:?}").contains("s3cret"));
}

#[test]
fn api_keys_are_never_printed_and_a_short_one_is_refused_naming_api_key() {
    let long = "k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y";
    let settings = Settings::parse_from(["privmsg-server", "--api-key", long]);
    assert!(!format!("{settings:?}").contains("k3y"));
    assert!(settings.validate().is_ok());
    assert!(settings.api_keys().expect("a long key").is_some());
    let short = Settings::parse_from(["privmsg-server", "--api-key", &format!("{long},sh0rt")]);
    let err = short.validate().expect_err("a short key refuses to start");
    assert!(err.contains("API_KEY") && !err.contains("sh0rt"), "{err}");
    let none = Settings::parse_from(["privmsg-server"]);
    assert!(none.api_keys().expect("unset is fine").is_none());
}

#[test]
fn sentinels_are_a_third_target_that_excludes_a_cluster() {
    let settings = Settings::try_parse_from([
        "privmsg-server",
        "--redis-sentinels=10.0.0.1:26379, 10.0.0.2:26379",
        "--redis-password=s3cret",
    ])
    .expect("sentinels parse");
    let RedisTarget::Sentinel(target) = settings.redis_target() else {
        panic!("a Sentinel target");
    };
    assert_eq!(target.sentinels, ["10.0.0.1:26379", "10.0.0.2:26379"]);
    assert_eq!(target.master, "mymaster");
    assert!(!format!("{settings:?}{target:?}").contains("s3cret"));

    let both = Settings::try_parse_from([
        "privmsg-server",
        "--redis-sentinels=10.0.0.1:26379",
        "--redis-cluster-nodes=10.0.0.2:7000",
    ])
    .expect("parses");
    let refused = both.validate().expect_err("both refused");
    assert!(refused.contains("REDIS_SENTINELS"), "{refused}");
}
