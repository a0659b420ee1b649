"""Throwaway X.509 certificates for TLS tests: a CA and server certificates it signs.

Built with the ``cryptography`` package (EC P-256 keys: fast to generate), so a test
can have a valid, an expiring, an expired and a wrong-host certificate in milliseconds.
"""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.timezone.utc


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trdrhub test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


class Issued:
    """A certificate and its key, in objects and as PEM files once written."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert, self.key = cert, key
        self.cert_path: Optional[Path] = None
        self.key_path: Optional[Path] = None

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, directory: Path, stem: str) -> "Issued":
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path, self.key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        self.cert_path.write_bytes(self.cert_pem)
        self.key_path.write_bytes(self.key_pem)
        self.key_path.chmod(0o600)
        return self


class TestCA:
    """A self-signed CA that issues server certificates with chosen names and validity."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "trdrhub test CA", now: Optional[datetime.datetime] = None) -> None:
        self.now = now or datetime.datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(self.now - datetime.timedelta(days=30))
                .not_valid_after(self.now + datetime.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        self.ca = Issued(cert, key)

    def issue(self, common_name: str = "localhost", sans: Sequence[str] = ("localhost", "127.0.0.1"),
              valid_days: float = 90, valid_from_days: float = -1) -> Issued:
        """A server certificate; ``valid_days`` counts from now (negative: already expired)."""
        key = ec.generate_private_key(ec.SECP256R1())
        not_before = self.now + datetime.timedelta(days=valid_from_days)
        not_after = self.now + datetime.timedelta(days=valid_days)
        if not_before >= not_after:
            not_before = not_after - datetime.timedelta(days=30)
        builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.ca.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   # Python 3.13 verifies with X509_STRICT, which wants both key identifiers.
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(_san(sans), critical=False)
        return Issued(builder.sign(self.ca.key, hashes.SHA256()), key)
