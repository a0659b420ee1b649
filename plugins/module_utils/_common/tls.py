# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""A server's TLS certificate, inspected the way ``openssl s_client`` was used in the runbook.

The certificate is fetched with a verifying handshake first; when verification
fails, a second, non-verifying handshake fetches it anyway, so an expired,
self-signed or wrong-host certificate is still described (with the verification
error) instead of only being refused. Host name matching is re-done here with the
``cryptography`` package so that the report says *why* a name does not match.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Library

with Library.optional('cryptography') as CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

try:
    import certifi
except ImportError:
    certifi = None

UTC = datetime.timezone.utc


def _handshake(host: str, port: int, context: ssl.SSLContext, timeout: float) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as raw:
        # Python never sends an IP address as SNI but checks it against the IP SANs.
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True) or b''


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def verifying_context(ca_path: str | None = None, client_cert: str | None = None,
                      client_key: str | None = None) -> ssl.SSLContext:
    """The same trust as requests: ca_path, else REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE, else certifi, else the system."""
    cafile = (ca_path or os.environ.get('REQUESTS_CA_BUNDLE') or os.environ.get('CURL_CA_BUNDLE')
              or (certifi.where() if certifi is not None else None))
    context = ssl.create_default_context(cafile=cafile)
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    return context


def fetch_certificate(host: str, port: int, timeout: float = 10, ca_path: str | None = None,
                      client_cert: str | None = None, client_key: str | None = None) -> tuple[bytes, str | None]:
    """(DER certificate, verification error or None). Raises OSError when no handshake is possible at all."""
    context = verifying_context(ca_path, client_cert, client_key)
    try:
        return _handshake(host, port, context, timeout), None
    except ssl.SSLCertVerificationError as exc:
        verify_error = exc.verify_message or str(exc)
    insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    if client_cert:
        insecure.load_cert_chain(client_cert, client_key)
    return _handshake(host, port, insecure, timeout), verify_error


def _utc(cert: t.Any, name: str) -> datetime.datetime:
    # cryptography >= 42 has the timezone-aware *_utc properties; older ones only naive UTC values.
    value = getattr(cert, f'{name}_utc', None)
    if value is None:
        value = getattr(cert, name).replace(tzinfo=UTC)
    return value


def subject_alt_names(cert: t.Any) -> tuple[list[str], list[t.Any]]:
    """(DNS names, IP addresses) of the subjectAltName extension; empty when there is none."""
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return [], []
    return list(ext.get_values_for_type(x509.DNSName)), list(ext.get_values_for_type(x509.IPAddress))


def dns_name_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125: case-insensitive, and a wildcard only as the whole left-most label, matching one label."""
    pattern, hostname = pattern.lower().rstrip('.'), hostname.lower().rstrip('.')
    if not pattern.startswith('*.'):
        return pattern == hostname
    suffix = pattern[1:]
    head, dot, rest = hostname.partition('.')
    return bool(head) and bool(dot) and '.' + rest == suffix and suffix.count('.') >= 2


def hostname_matches(cert: t.Any, hostname: str) -> bool:
    """Whether the certificate's SANs cover ``hostname`` (the subject CN is ignored, as by browsers and Python)."""
    dns_names, ips = subject_alt_names(cert)
    if _is_ip(hostname):
        return ipaddress.ip_address(hostname) in ips
    return any(dns_name_matches(name, hostname) for name in dns_names)


def describe_certificate(der: bytes, hostname: str, min_days: float = 14,
                         now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """The report of RV(tls): names, validity, days left and the host name check."""
    cert = x509.load_der_x509_certificate(der)
    now = now or datetime.datetime.now(UTC)
    not_before, not_after = _utc(cert, 'not_valid_before'), _utc(cert, 'not_valid_after')
    dns_names, ips = subject_alt_names(cert)
    days = round((not_after - now).total_seconds() / 86400, 2)
    expired = now > not_after
    return {
        'subject': cert.subject.rfc4514_string(),
        'issuer': cert.issuer.rfc4514_string(),
        'sans': dns_names + [str(ip) for ip in ips],
        'serial_number': format(cert.serial_number, 'x'),
        'not_before': not_before.isoformat(),
        'not_after': not_after.isoformat(),
        'days_to_expiry': days,
        'expired': expired,
        'not_yet_valid': now < not_before,
        'expiring_soon': not expired and days < min_days,
        'hostname': hostname,
        'hostname_match': hostname_matches(cert, hostname),
    }


def inspect_tls(host: str, port: int, timeout: float = 10, ca_path: str | None = None, client_cert: str | None = None,
                client_key: str | None = None, min_days: float = 14,
                now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Fetch and describe; an unreachable server gives ``error`` instead of the certificate fields."""
    try:
        der, verify_error = fetch_certificate(host, port, timeout, ca_path, client_cert, client_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, 'strerror', None) or str(exc) or type(exc).__name__
        return {'error': f'no TLS handshake with {host}:{port}: {reason}', 'verify_error': None, 'expired': None,
                'expiring_soon': None, 'hostname_match': None}
    try:
        report = describe_certificate(der, host, min_days, now)
    except ValueError as exc:
        return {'error': f'cannot parse the certificate of {host}:{port}: {exc}', 'verify_error': verify_error,
                'expired': None, 'expiring_soon': None, 'hostname_match': None}
    report.update(verify_error=verify_error, error=None)
    return report
