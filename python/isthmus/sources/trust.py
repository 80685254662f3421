"""Which server certificates an OPC UA endpoint trusts.

A secure channel only proves that the server holds the key of the certificate it
offers; whether that certificate belongs to *our* server is a trust decision. The
trust list is a certificate file (PEM, possibly several certificates, or DER) or a
directory of such files. The offered certificate is trusted when it is one of
them (same SHA-256 thumbprint), or when a CA certificate among them signed it
directly; in both cases it must also be inside its validity period.

The list is re-read at every connection attempt, so a certificate copied into the
trust directory is picked up at the next retry without a restart.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from isthmus.errors import ConfigError, SessionError

__all__ = [
    "UntrustedCertificate",
    "certificate_label",
    "load_certificates",
    "thumbprint",
    "verify_server_certificate",
]

CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")


class UntrustedCertificate(SessionError):
    """The server offered a certificate the trust list does not vouch for."""


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, colon-separated upper-case hex (as openssl prints it)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def certificate_label(cert: x509.Certificate) -> str:
    """``subject "CN=x,O=y", SHA-256 AB:CD:...``: enough to find the certificate again."""
    return f'subject "{cert.subject.rfc4514_string()}", SHA-256 {thumbprint(cert)}'


def _parse(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_certificates(path: str | Path, what: str = "trust_list") -> list[x509.Certificate]:
    """Every certificate in a file or in a directory's certificate files.

    Raises :class:`ConfigError` naming ``what`` and the file when one is unreadable or
    not a certificate, and when a directory holds no certificate at all.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in CERT_SUFFIXES)
        if not files:
            raise ConfigError(
                f"{what}: directory {path} holds no certificate ({', '.join(CERT_SUFFIXES)})"
            )
    else:
        files = [path]
    certs: list[x509.Certificate] = []
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {file}: {exc.strerror or exc}") from None
        try:
            certs.extend(_parse(data))
        except ValueError:
            raise ConfigError(f"{what}: {file} is not a PEM or DER certificate") from None
    return certs


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:  # wrong issuer name, bad signature, unsupported key type: not issued by it
        return False
    return True


def _check_names_server(cert: x509.Certificate, server: str, label: str) -> None:
    """Refuse a CA-issued certificate that is itself a CA or does not name ``server``'s host.

    One plant CA signs many devices; its signature alone would let any of them (an HMI,
    another PLC) pose as this endpoint and receive the credentials.
    """
    if _is_ca(cert):
        raise UntrustedCertificate(
            f"{server} offered certificate {label}, a CA certificate (basicConstraints CA=true) "
            f"where a server certificate was expected: refused (no credentials sent)"
        )
    host = (urlsplit(server).hostname or "").lower()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    dns = [name.lower().rstrip(".") for name in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    try:
        wanted_ip: str | None = str(ipaddress.ip_address(host))
    except ValueError:
        wanted_ip = None
    if (wanted_ip is not None and wanted_ip in ips) or host.rstrip(".") in dns:
        return
    named = ", ".join([*dns, *ips]) or "no DNS name or IP address"
    raise UntrustedCertificate(
        f"{server} offered certificate {label}, which names {named} but not {host!r}: "
        f"refused (no credentials sent). A CA-issued server certificate must name the "
        f"server's host in its subjectAltName"
    )


def verify_server_certificate(
    offered_der: bytes,
    trusted: list[x509.Certificate],
    *,
    server: str,
    where: str,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """The offered certificate when ``trusted`` vouches for it; else :class:`UntrustedCertificate`.

    ``server`` names the peer (its URL) and ``where`` the place to put a certificate
    to trust it; both go into the error so an operator can act on it.
    """
    try:
        cert = x509.load_der_x509_certificate(offered_der)
    except ValueError:
        raise UntrustedCertificate(
            f"{server} offered a certificate that is not valid DER: refused"
        ) from None
    now = now or dt.datetime.now(dt.UTC)
    label = certificate_label(cert)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise UntrustedCertificate(
            f"{server} offered certificate {label} valid only "
            f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}: refused"
        )
    wanted = cert.fingerprint(hashes.SHA256())
    if any(t.fingerprint(hashes.SHA256()) == wanted for t in trusted):
        return cert
    for ca in trusted:
        in_time = ca.not_valid_before_utc <= now <= ca.not_valid_after_utc
        if in_time and _is_ca(ca) and _issued_by(cert, ca):
            _check_names_server(cert, server, label)
            return cert
    raise UntrustedCertificate(
        f"{server} offered certificate {label}, which {where} does not trust: refused "
        f"(no credentials sent). If this is the right server, add its certificate (or its "
        f"CA's) to {where}"
    )
