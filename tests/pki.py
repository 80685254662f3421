"""Certificates made in the tests with `cryptography`: a CA, servers it signs, self-signed peers."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    cert_path: Path  # DER
    key_path: Path  # PEM

    @property
    def thumbprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex(":").upper()

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _san_host(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(
    directory: Path,
    name: str,
    *,
    uri: str = "urn:isthmus:test",
    issuer: Issued | None = None,
    ca: bool = False,
    server: bool = True,
    days: int = 30,
    start: dt.datetime | None = None,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> Issued:
    """A 2048-bit RSA certificate (DER file) and key (PEM file) named ``name`` in ``directory``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "isthmus tests"),
        ]
    )
    start = start or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
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
    else:
        builder = (
            builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(uri), *map(_san_host, hosts)]
                ),
                critical=False,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=True,
                    data_encipherment=True,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    cert_path = directory / f"{name}.der"
    key_path = directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert, key, cert_path, key_path)
