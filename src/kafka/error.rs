//! Kafka's errors as `logbus::Error::Kafka`, each with what was attempted,
//! against which cluster, and what to do about it.

use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};

use crate::error::Error;

/// An `Error::Kafka` for `what` (e.g. "sending to topic 'orders'") against
/// `bootstrap`, with advice picked from the error code. `last` is the
/// client's most recent asynchronous error (a refused TLS handshake, a
/// refused connection), which often says more than a timeout does.
pub(crate) fn kafka_error(what: &str, bootstrap: &str, source: KafkaError, last: Option<String>) -> Error {
    // A timeout after a failed TLS handshake (or a refused login) is a TLS
    // (or credentials) problem, not a network one.
    let advice = match &last {
        Some(l) if is_tls_failure(l) => TLS_ADVICE,
        Some(l) if is_auth_failure(l) => AUTH_ADVICE,
        _ => advice(&source),
    };
    let last = last.map(|l| format!(" (last client error: {l})")).unwrap_or_default();
    Error::Kafka {
        context: format!("Kafka cluster at {bootstrap}: {what} failed{last}; {advice}"),
        source: Box::new(source),
    }
}

/// The error's librdkafka code, including admin results (which rdkafka's
/// own `rdkafka_error_code` leaves out).
pub(crate) fn code(e: &KafkaError) -> Option<Code> {
    match e {
        KafkaError::AdminOp(c) => Some(*c),
        _ => e.rdkafka_error_code(),
    }
}

/// What to do about a failed TLS handshake.
const TLS_ADVICE: &str = "the TLS handshake with the broker failed: if the certificate could not be verified, \
     this client does not trust the broker's certificate: set ssl.ca.location to the PEM file of the CA that signed \
     it (a private CA) or install the system's CA certificates (a public CA), and check that the certificate names \
     the host in bootstrap.servers; if the listener is not TLS at all, security.protocol must match it";

/// True when the client's last error is librdkafka's report of a failed TLS
/// handshake, e.g. "ssl://HOST:PORT/bootstrap: error:0A000086:SSL
/// routines::certificate verify failed (after 1ms in state SSL_HANDSHAKE)".
fn is_tls_failure(last: &str) -> bool {
    ["in state SSL_HANDSHAKE", "SSL handshake failed", "(Local: SSL error)"]
        .iter()
        .any(|s| last.contains(s))
}

/// What to do about a refused SASL login.
const AUTH_ADVICE: &str = "the cluster refused the login: check sasl.mechanisms, sasl.username and sasl.password \
     (a SCRAM user has credentials for one mechanism: SCRAM-SHA-256 and SCRAM-SHA-512 are separate); \
     \"Unsupported SASL mechanism\" means the listener does not offer the one asked for: use one it lists";

/// True when the client's last error is librdkafka's report of a refused
/// SASL login or mechanism, e.g. "SASL authentication error: SASL SCRAM
/// authentication failed: broker responded with invalid-proof" or "SASL
/// SCRAM-SHA-512 mechanism handshake failed: Broker: Unsupported SASL
/// mechanism".
pub(crate) fn is_auth_failure(last: &str) -> bool {
    [
        "SASL authentication error",
        "mechanism handshake failed",
        "(Local: Authentication failure)",
    ]
    .iter()
    .any(|s| last.contains(s))
}

/// What to do about an error, by its code.
fn advice(e: &KafkaError) -> &'static str {
    match code(e) {
        Some(
            Code::MessageTimedOut
            | Code::OperationTimedOut
            | Code::RequestTimedOut
            | Code::AllBrokersDown
            | Code::BrokerTransportFailure
            | Code::Resolve,
        ) => {
            "no broker answered in time: check that the cluster runs, that the bootstrap address and port are \
             reachable from here, and that security.protocol matches the listener (SSL/SASL_SSL need .set(\"security.protocol\", ..))"
        }
        Some(Code::UnknownTopicOrPartition | Code::UnknownTopic) => {
            "the topic does not exist on the cluster: create it (kafka::Admin::create_topic) or check its name"
        }
        Some(Code::UnknownPartition) => "the topic has fewer partitions than the one asked for",
        Some(Code::MessageSizeTooLarge) => {
            "the record is larger than the cluster accepts: split it, or raise the topic's max.message.bytes \
             and the client's message.max.bytes"
        }
        Some(Code::SSL) => TLS_ADVICE,
        Some(Code::Authentication | Code::SaslAuthenticationFailed) => AUTH_ADVICE,
        Some(Code::TopicAuthorizationFailed | Code::GroupAuthorizationFailed) => {
            "the cluster's ACLs refuse this principal: grant it access to the topic or group"
        }
        Some(Code::RebalanceInProgress | Code::IllegalGeneration | Code::UnknownMemberId) => {
            "the group rebalanced since this member's last poll: poll again, then commit"
        }
        Some(Code::AutoOffsetReset | Code::OffsetOutOfRange) => {
            "there is no valid position and offset_reset is None: commit or seek first, or use Earliest/Latest"
        }
        Some(Code::TopicAlreadyExists) => "the topic already exists: use it, or delete it first",
        Some(Code::InvalidReplicationFactor) => {
            "the cluster has fewer brokers than the replication factor: lower it"
        }
        _ => match e {
            KafkaError::ClientConfig(..) => "a client setting is invalid: fix or remove it (see librdkafka's CONFIGURATION.md)",
            _ => "librdkafka's reason follows",
        },
    }
}

/// Errors a client recovers from by itself (a broker restarting, a connection
/// being re-established): `poll` skips them, as Kafka's Java consumer does.
pub(crate) fn is_transient(e: &KafkaError) -> bool {
    matches!(
        code(e),
        Some(
            Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::Resolve
                | Code::OperationTimedOut
                | Code::RequestTimedOut
                | Code::CoordinatorNotAvailable
                | Code::NotCoordinator
        )
    ) && !matches!(e, KafkaError::MessageConsumptionFatal(_))
}
