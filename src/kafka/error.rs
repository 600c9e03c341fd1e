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
        Some(l) if is_client_cert_refusal(l) => CLIENT_CERT_ADVICE,
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
     the host in bootstrap.servers; if the listener is not TLS at all, security.protocol must match it; if the \
     broker requires a client certificate (mutual TLS), set ssl.certificate.location and ssl.key.location";

/// What to do when the broker wanted a client certificate and got none, or
/// refused the one it got.
const CLIENT_CERT_ADVICE: &str = "the broker requires a client certificate (mutual TLS) and this client sent none, \
     or one the broker does not accept: set ssl.certificate.location and ssl.key.location (or \
     ssl.keystore.location and ssl.keystore.password) to a certificate signed by a CA the cluster trusts and its key";

/// True when the client's last error is a TLS alert the broker sent about
/// this client's certificate: "tlsv13 alert certificate required" (none
/// sent), "alert bad certificate", "alert unknown ca" or "alert certificate
/// unknown" (one it does not accept). A client that does not trust the
/// broker reports "certificate verify failed" instead: that alert is the
/// one it sends.
fn is_client_cert_refusal(last: &str) -> bool {
    [
        "alert certificate required",
        "alert bad certificate",
        "alert unknown ca",
        "alert certificate unknown",
    ]
    .iter()
    .any(|s| last.contains(s))
}

/// True when the client's last error says the cluster refused this client
/// for a reason that retrying cannot change: its SASL login, or its TLS
/// client certificate.
pub(crate) fn refused_for_good(last: &str) -> bool {
    is_auth_failure(last) || is_client_cert_refusal(last)
}

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
fn is_auth_failure(last: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_refusing_the_client_certificate_is_told_apart_from_a_client_refusing_the_broker() {
        let no_client_cert = "ssl://127.0.0.1:36279/bootstrap: Receive failed: error:0A00045C:SSL \
             routines::tlsv13 alert certificate required: SSL alert number 116 (after 0ms in state APIVERSION_QUERY)";
        let untrusted_broker = "ssl://127.0.0.1:39953/bootstrap: SSL handshake failed: error:0A000086:SSL \
             routines::certificate verify failed: broker certificate could not be verified (after 12ms in state \
             SSL_HANDSHAKE)";
        let wrong_password = "sasl_plaintext://127.0.0.1:19092/bootstrap: SASL authentication error: SASL SCRAM \
             authentication failed: broker responded with invalid-proof (after 22ms in state AUTH_REQ)";
        let down = "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused";

        assert!(is_client_cert_refusal(no_client_cert) && refused_for_good(no_client_cert));
        assert!(is_tls_failure(untrusted_broker) && !is_client_cert_refusal(untrusted_broker));
        assert!(!refused_for_good(untrusted_broker));
        assert!(refused_for_good(wrong_password) && !is_client_cert_refusal(wrong_password));
        assert!(!refused_for_good(down) && !is_tls_failure(down));
    }
}
