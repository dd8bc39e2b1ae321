//! A federation's certificates: one CA, a server certificate for the aggregator, one client
//! certificate per agent; the aggregator accepts only clients the CA signed (mutual TLS).
//! `foresight federate certs` writes them as PEM files for a test or a small fleet; a real
//! fleet would take them from its PKI (cert-manager, Vault) instead.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Why certificates could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating failed.
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// PEM certificate and key.
#[derive(Debug, Clone)]
pub struct Pair {
    /// Certificate.
    pub cert: String,
    /// Private key.
    pub key: String,
}

/// The CA certificate and what it signed.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// CA certificate (PEM).
    pub ca: String,
    /// The aggregator's certificate, valid for `localhost`, 127.0.0.1 and `hosts`.
    pub server: Pair,
    /// Each agent's certificate, by name.
    pub agents: Vec<(String, Pair)>,
}

fn leaf(
    name: &str,
    sans: Vec<String>,
    client: bool,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<Pair, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    let cert = params.signed_by(&key, issuer)?;
    Ok(Pair { cert: cert.pem(), key: key.serialize_pem() })
}

/// Mints a CA, a server certificate and one client certificate per agent.
pub fn mint(hosts: &[String], agents: &[String]) -> Result<Bundle, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(DnType::CommonName, "foresight federation CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    sans.extend(hosts.iter().cloned());
    Ok(Bundle {
        ca: ca_cert.pem(),
        server: leaf("foresight aggregator", sans, false, &issuer)?,
        agents: agents
            .iter()
            .map(|a| Ok((a.clone(), leaf(a, vec![a.clone()], true, &issuer)?)))
            .collect::<Result<_, rcgen::Error>>()?,
    })
}

fn write(path: PathBuf, text: &str) -> Result<(), TlsError> {
    std::fs::write(&path, text).map_err(|source| TlsError::Io { path, source })
}

impl Bundle {
    /// Writes `ca.pem`, `server.pem`/`server.key` and `<agent>.pem`/`<agent>.key` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io { path: dir.into(), source })?;
        write(dir.join("ca.pem"), &self.ca)?;
        write(dir.join("server.pem"), &self.server.cert)?;
        write(dir.join("server.key"), &self.server.key)?;
        for (name, pair) in &self.agents {
            write(dir.join(format!("{name}.pem")), &pair.cert)?;
            write(dir.join(format!("{name}.key")), &pair.key)?;
        }
        Ok(())
    }
}

/// Reads a PEM file, naming it when it cannot be.
pub fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io { path: path.into(), source })
}
