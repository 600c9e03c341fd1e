//! Event sourcing: bank accounts whose state is nothing but a log of events.
//!
//! Commands are validated against the current state and recorded as typed
//! events (postcard-encoded, keyed by account so each account's events stay
//! in order in one partition). The broker is closed, reopened, and the state
//! rebuilt by replaying every partition from offset 0; it equals the state
//! before the restart.
//!
//! `cargo run --example event_sourcing` (uses a fresh temp directory; needs
//! the default `serde` feature for the `Postcard` codec).
#![cfg_attr(not(feature = "serde"), allow(dead_code, unused_imports))]

use std::collections::BTreeMap;
use std::time::Duration;

#[cfg(feature = "serde")]
use logbus::Postcard;
use logbus::{Broker, ConsumerConfig, TopicConfig, TopicPartition, TypedConsumer, TypedProducer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { cents: u64 },
    Withdrawn { cents: u64 },
    Closed,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Account {
    owner: String,
    balance: u64,
    events: u32,
    closed: bool,
}

/// The state: accounts by id. Built only by applying events.
#[derive(Debug, Default, PartialEq)]
struct Bank {
    accounts: BTreeMap<String, Account>,
}

impl Bank {
    fn apply(&mut self, id: &str, event: &AccountEvent) {
        let account = self.accounts.entry(id.to_string()).or_default();
        account.events += 1;
        match event {
            AccountEvent::Opened { owner } => account.owner = owner.clone(),
            AccountEvent::Deposited { cents } => account.balance += cents,
            AccountEvent::Withdrawn { cents } => account.balance -= cents,
            AccountEvent::Closed => account.closed = true,
        }
    }

    /// Validates a command against the state; returns the event to record, if any.
    fn decide(&self, id: &str, command: &AccountEvent) -> Result<AccountEvent, String> {
        let account = self.accounts.get(id);
        match (command, account) {
            (AccountEvent::Opened { .. }, None) => Ok(command.clone()),
            (AccountEvent::Opened { .. }, Some(_)) => Err(format!("{id} is already open")),
            (_, None) => Err(format!("{id} does not exist")),
            (_, Some(a)) if a.closed => Err(format!("{id} is closed")),
            (AccountEvent::Withdrawn { cents }, Some(a)) if *cents > a.balance => {
                Err(format!("{id} has {} cents, cannot withdraw {cents}", a.balance))
            }
            (AccountEvent::Closed, Some(a)) if a.balance > 0 => Err(format!("{id} still holds {} cents", a.balance)),
            _ => Ok(command.clone()),
        }
    }
}

#[cfg(not(feature = "serde"))]
fn main() {
    eprintln!("this example needs the `serde` feature (on by default)");
}

#[cfg(feature = "serde")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let before = {
        let broker = Broker::open(dir.path())?;
        broker.create_topic("accounts", TopicConfig::new(3))?;
        let events = TypedProducer::<AccountEvent, _>::new(broker.producer(), "accounts", Postcard);
        let mut bank = Bank::default();
        let (mut recorded, mut refused) = (0, 0);

        let owners = ["alice", "bob", "carol", "dave", "erin"];
        let mut commands = Vec::new();
        for (i, owner) in owners.iter().enumerate() {
            commands.push((
                format!("acct-{i}"),
                AccountEvent::Opened {
                    owner: owner.to_string(),
                },
            ));
        }
        // A deterministic mix of deposits and withdrawals; some withdrawals bounce.
        for step in 0..200u64 {
            let id = format!("acct-{}", step % 5);
            let cents = (step * 7919) % 5_000;
            let command = if step % 3 == 2 {
                AccountEvent::Withdrawn { cents }
            } else {
                AccountEvent::Deposited { cents }
            };
            commands.push((id, command));
        }
        commands.push(("acct-9".into(), AccountEvent::Deposited { cents: 1 })); // no such account
        commands.push(("acct-4".into(), AccountEvent::Closed)); // refused: money left
        let last = bank_balance_after(&commands, "acct-4");
        commands.push(("acct-4".into(), AccountEvent::Withdrawn { cents: last }));
        commands.push(("acct-4".into(), AccountEvent::Closed));

        for (id, command) in &commands {
            match bank.decide(id, command) {
                Ok(event) => {
                    events.send_keyed(id.clone(), &event)?;
                    bank.apply(id, &event);
                    recorded += 1;
                }
                Err(why) => {
                    refused += 1;
                    if refused <= 3 || matches!(command, AccountEvent::Closed) {
                        println!("refused: {why}");
                    }
                }
            }
        }
        println!("recorded {recorded} events, refused {refused} commands");
        print_bank("state before the restart", &bank);
        broker.close()?;
        println!("broker closed");
        bank
    };

    // A new process would start here: only the directory survives.
    let broker = Broker::open(dir.path())?;
    let topic = broker.topic("accounts")?;
    let partitions: Vec<TopicPartition> = (0..topic.partition_count())
        .map(|p| TopicPartition::new("accounts", p))
        .collect();
    let ends: Vec<u64> = (0..topic.partition_count())
        .map(|p| topic.partition(p).map(|p| p.end_offset()))
        .collect::<logbus::Result<_>>()?;
    println!("broker reopened: partition end offsets {ends:?}");

    let mut consumer = broker.consumer(ConsumerConfig::new())?;
    consumer.assign(&partitions)?;
    for tp in &partitions {
        consumer.seek(tp, 0)?;
    }
    let mut replay = TypedConsumer::<AccountEvent, _>::new(consumer, Postcard);
    let mut rebuilt = Bank::default();
    let mut replayed = 0;
    loop {
        let done = partitions
            .iter()
            .zip(&ends)
            .map(|(tp, end)| replay.consumer().position(tp).map(|p| p >= *end))
            .collect::<logbus::Result<Vec<bool>>>()?;
        if done.iter().all(|d| *d) {
            break;
        }
        for r in replay.poll(Duration::from_secs(1))? {
            let id = String::from_utf8_lossy(r.record.key().unwrap_or_default()).into_owned();
            rebuilt.apply(&id, &r.value);
            replayed += 1;
        }
    }
    println!("replayed {replayed} events from offset 0");
    print_bank("state rebuilt from the log", &rebuilt);
    assert_eq!(rebuilt, before, "the replayed state differs");
    println!("rebuilt state equals the state before the restart");
    replay.into_inner().close()?;
    broker.close()?;
    Ok(())
}

/// The balance `id` will have after the commands so far (for the example's script).
fn bank_balance_after(commands: &[(String, AccountEvent)], id: &str) -> u64 {
    let mut bank = Bank::default();
    for (cid, command) in commands {
        if let Ok(event) = bank.decide(cid, command) {
            bank.apply(cid, &event);
        }
    }
    bank.accounts.get(id).map_or(0, |a| a.balance)
}

fn print_bank(title: &str, bank: &Bank) {
    println!("{title}:");
    for (id, a) in &bank.accounts {
        let status = if a.closed { "closed" } else { "open" };
        println!(
            "  {id}  {:<6} balance {:>8.2}  events {:>3}  {status}",
            a.owner,
            a.balance as f64 / 100.0,
            a.events
        );
    }
}
