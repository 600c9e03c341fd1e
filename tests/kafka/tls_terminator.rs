//! A TLS broker for tests: tansu behind a TLS terminator that runs inside the
//! test process, with certificates the test makes.
//!
//! tansu 0.6.0 cannot serve TLS itself, so [`TlsBroker::start`] puts a
//! terminator in front of it, as a load balancer in front of a real cluster
//! would: the terminator accepts TLS on its own loopback port and pumps the
//! decrypted bytes to and from tansu's plaintext port, and tansu advertises
//! the terminator's port, so every connection a client makes (bootstrap,
//! then the advertised broker) goes through TLS.
//!
//! [`TestCa`] makes a throwaway certificate authority and a server
//! certificate it signs (for `localhost` and `127.0.0.1`), and client
//! certificates for mutual TLS, with the same vendored OpenSSL that
//! librdkafka is built with.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509};

use crate::broker::Tansu;

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the pump waits on one side before looking at the other.
const TICK: Duration = Duration::from_millis(2);

/// A throwaway certificate authority and one server certificate it signed,
/// the CA's certificate written as PEM for `ssl.ca.location`.
pub struct TestCa {
    dir: tempfile::TempDir,
    ca_pem: PathBuf,
    ca: X509,
    ca_key: PKey<Private>,
    ca_name: X509Name,
    server_cert: X509,
    server_key: PKey<Private>,
}

impl TestCa {
    /// A new CA named `name` (valid for a day) and a server certificate for
    /// `localhost` and `127.0.0.1` signed by it.
    pub fn new(name: &str) -> TestCa {
        let ca_key = ec_key();
        let ca_name = x509_name(name);
        let mut ca = certificate_builder(&ca_name, &ca_name, &ca_key);
        ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        ca.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap())
            .unwrap();
        let ski = SubjectKeyIdentifier::new()
            .build(&ca.x509v3_context(None, None))
            .unwrap();
        ca.append_extension(ski).unwrap();
        ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let ca = ca.build();

        let server_key = ec_key();
        let server = leaf(&ca, &ca_key, &ca_name, "localhost", &server_key, true);

        let dir = tempfile::tempdir().unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.to_pem().unwrap()).unwrap();
        TestCa {
            dir,
            ca_pem,
            ca,
            ca_key,
            ca_name,
            server_cert: server,
            server_key,
        }
    }

    /// A client certificate named `name` signed by this CA, written as PEM
    /// files: (certificate, key), for `ssl.certificate.location` and
    /// `ssl.key.location`.
    pub fn client_identity(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = ec_key();
        let cert = leaf(&self.ca, &self.ca_key, &self.ca_name, name, &key, false);
        let (cert_pem, key_pem) = (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&cert_pem, cert.to_pem().unwrap()).unwrap();
        std::fs::write(&key_pem, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (cert_pem, key_pem)
    }

    /// The CA's certificate as a PEM file, for `ssl.ca.location`.
    pub fn ca_pem(&self) -> &Path {
        &self.ca_pem
    }

    /// A TLS server presenting the server certificate; with `mutual`, it
    /// also requires a client certificate signed by this CA (mutual TLS).
    fn acceptor(&self, mutual: bool) -> SslAcceptor {
        let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        a.set_private_key(&self.server_key).unwrap();
        a.set_certificate(&self.server_cert).unwrap();
        a.check_private_key().unwrap();
        if mutual {
            a.cert_store_mut().add_cert(self.ca.clone()).unwrap();
            a.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        }
        a.build()
    }
}

/// A certificate for `key` named `name`, signed by the CA: a server's (for
/// `localhost` and `127.0.0.1`) or a client's.
fn leaf(ca: &X509, ca_key: &PKey<Private>, ca_name: &X509Name, name: &str, key: &PKey<Private>, server: bool) -> X509 {
    let mut b = certificate_builder(&x509_name(name), ca_name, key);
    b.append_extension(BasicConstraints::new().build().unwrap()).unwrap();
    b.append_extension(KeyUsage::new().critical().digital_signature().build().unwrap())
        .unwrap();
    let usage = if server {
        ExtendedKeyUsage::new().server_auth().build()
    } else {
        ExtendedKeyUsage::new().client_auth().build()
    };
    b.append_extension(usage.unwrap()).unwrap();
    if server {
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(Some(ca), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(ca), None))
        .unwrap();
    b.append_extension(aki).unwrap();
    b.sign(ca_key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn x509_name(common_name: &str) -> X509Name {
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, common_name).unwrap();
    n.build()
}

/// A v3 certificate for `key` named `subject`, issued by `issuer`, valid from
/// now for a day, not yet extended or signed.
fn certificate_builder(subject: &X509Name, issuer: &X509Name, key: &PKey<Private>) -> openssl::x509::X509Builder {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap()).unwrap();
    b.set_subject_name(subject).unwrap();
    b.set_issuer_name(issuer).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    b
}

/// Accepts TLS on a loopback port and forwards the plaintext to a target;
/// stops accepting and pumping on drop.
pub struct TlsTerminator {
    port: u16,
    stop: Arc<AtomicBool>,
    handshakes: Arc<AtomicUsize>,
    refused: Arc<Mutex<Vec<String>>>,
    accept: Option<JoinHandle<()>>,
}

impl TlsTerminator {
    /// Serves TLS on `listener` (bound by the caller, so its port can be
    /// advertised before the target runs), forwarding each connection to `target`.
    /// With `mutual`, every client must present a certificate signed by `ca`.
    pub fn start(listener: TcpListener, ca: &TestCa, mutual: bool, target: SocketAddr) -> TlsTerminator {
        let port = listener.local_addr().unwrap().port();
        let acceptor = Arc::new(ca.acceptor(mutual));
        let stop = Arc::new(AtomicBool::new(false));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (s, h, r) = (stop.clone(), handshakes.clone(), refused.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (acceptor, s, h, r) = (acceptor.clone(), s.clone(), h.clone(), r.clone());
                // A connection's end (or error) concerns only that connection.
                std::thread::spawn(move || {
                    let _ = serve(&acceptor, conn, target, &s, &h, &r);
                });
            }
        });
        TlsTerminator {
            port,
            stop,
            handshakes,
            refused,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT` of the TLS side.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Acquire)
    }

    /// Why each failed TLS handshake failed, so far (e.g. a client refusing
    /// the certificate).
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// One connection: the TLS handshake, then bytes both ways until either side
/// closes or the terminator stops.
fn serve(
    acceptor: &SslAcceptor,
    conn: TcpStream,
    target: SocketAddr,
    stop: &AtomicBool,
    handshakes: &AtomicUsize,
    refused: &Mutex<Vec<String>>,
) -> io::Result<()> {
    conn.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    conn.set_nodelay(true)?;
    // A TLS client opens with a handshake record (0x16). Plaintext clients
    // (such as the broker's own readiness probe, which follows the advertised
    // address here) are dropped without counting as refused handshakes.
    let mut first = [0u8; 1];
    if conn.peek(&mut first)? == 0 || first[0] != 0x16 {
        return Ok(());
    }
    let mut tls = match acceptor.accept(conn) {
        Ok(tls) => tls,
        Err(e) => {
            refused.lock().unwrap().push(e.to_string());
            return Err(io::Error::other(e.to_string()));
        }
    };
    handshakes.fetch_add(1, Ordering::AcqRel);
    let mut plain = TcpStream::connect(target)?;
    plain.set_nodelay(true)?;
    // One thread, both directions: short read timeouts let it alternate
    // (an SslStream cannot be split between two threads).
    tls.get_ref().set_read_timeout(Some(TICK))?;
    plain.set_read_timeout(Some(TICK))?;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Acquire) {
        match tls.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => plain.write_all(&buf[..n])?,
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e),
        }
        match plain.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => tls.write_all(&buf[..n])?,
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// tansu behind a [`TlsTerminator`], with the [`TestCa`] that signed the
/// terminator's certificate.
pub struct TlsBroker {
    // Fields drop in order: stop forwarding, then stop the broker.
    terminator: TlsTerminator,
    broker: Tansu,
    ca: TestCa,
}

impl TlsBroker {
    /// A new CA, a broker advertising the terminator's port, and the terminator.
    pub fn start() -> TlsBroker {
        TlsBroker::start_with(false)
    }

    /// The same, with a terminator that requires a client certificate
    /// signed by the CA (mutual TLS, as MSK's "TLS client authentication").
    pub fn start_mutual() -> TlsBroker {
        TlsBroker::start_with(true)
    }

    fn start_with(mutual: bool) -> TlsBroker {
        let ca = TestCa::new("logbus test CA");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let broker = Tansu::start_advertising(listener.local_addr().unwrap().port());
        let target = broker.bootstrap().parse().unwrap();
        let terminator = TlsTerminator::start(listener, &ca, mutual, target);
        TlsBroker { terminator, broker, ca }
    }

    /// The CA that signed the broker's certificate (and signs client ones).
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// `127.0.0.1:PORT` of the TLS side, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.terminator.address()
    }

    /// The PEM file of the CA that signed the broker's certificate.
    pub fn ca_pem(&self) -> &Path {
        self.ca.ca_pem()
    }

    pub fn terminator(&self) -> &TlsTerminator {
        &self.terminator
    }

    /// The broker behind the terminator (its plaintext port, its log).
    pub fn broker(&self) -> &Tansu {
        &self.broker
    }
}
