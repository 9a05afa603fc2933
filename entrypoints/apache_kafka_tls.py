"""Throw-away TLS material for a test Kafka broker: a CA and a server certificate, as PEM.

Tests of the SASL_SSL path need a broker certificate that a client can verify with its
hostname check on (kafka-python's default), so the certificate names both 127.0.0.1 and
localhost. Kafka (2.7+) reads PEM key stores directly, which spares us keytool and JKS
passwords. The files live in a directory the caller deletes; nothing here is for
production use (short-lived, unencrypted keys on disk).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)
# A clock a little behind the machine's must not see a certificate from the future.
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class TlsFiles:
    """Where `make_tls_files` wrote each PEM file."""

    ca_file: Path
    """The CA certificate: the broker's truststore and the client's `ssl_cafile`."""
    keystore_file: Path
    """The server's PKCS#8 private key followed by its certificate chain (Kafka PEM keystore)."""


def make_tls_files(
    directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> TlsFiles:
    """Write a fresh CA and a server certificate for `hosts` (IPs or DNS names) into `directory`.

    P-256 keys: generated in a millisecond, and Kafka's PEM loader accepts EC PKCS#8 keys.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - BACKDATE
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "casebook test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    keystore_file = directory / "server-keystore.pem"
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (server_cert, ca_cert))
    keystore_file.write_bytes(key_pem + chain_pem)
    keystore_file.chmod(0o600)
    return TlsFiles(ca_file=ca_file, keystore_file=keystore_file)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
