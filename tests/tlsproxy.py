"""TLS in front of the test broker: a throw-away CA, a server certificate, and socat.

The embedded broker's own TLS flags do not work in the shipped build, so TLS tests put
Debian's ``socat`` in front of it: the broker listens on a plain loopback port and
*advertises* the terminator's port, so every connection a Kafka client makes after
bootstrap goes through TLS too.

Usage (the lead's consumer TLS test can do the same)::

    from tests.tlsproxy import tls_broker

    with tls_broker(tmp_path) as tls:
        consumer = KafkaConsumer(..., bootstrap_servers=tls.bootstrap_servers,
                                 security_protocol="SSL", ssl_cafile=str(tls.ca_file))
        # tls.wrong_ca_file: a CA that did not sign the server certificate

``socat`` comes from ``apt-get install -y socat``; call ``require_binary("socat")`` from
``tests/conftest.py`` first so that a missing socat fails under ``CI=true``.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.broker import EmbeddedBroker, free_port, wait_for_port

__all__ = ["TlsBroker", "TlsFiles", "TlsTerminator", "make_certificates", "tls_broker"]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files written by :func:`make_certificates`."""

    ca_file: Path  # the CA that signed the server certificate
    wrong_ca_file: Path  # an unrelated CA, for "verification must fail" tests
    server_cert: Path
    server_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certificates(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """Write a CA, a server certificate for ``hosts`` signed by it, and an unrelated CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _ca("driftd test CA")
    wrong_cert, _ = _ca("driftd unrelated CA")
    key = _key()
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_file=directory / "ca.pem",
        wrong_ca_file=directory / "wrong-ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
    )
    files.ca_file.write_bytes(_pem(ca_cert))
    files.wrong_ca_file.write_bytes(_pem(wrong_cert))
    files.server_cert.write_bytes(_pem(cert))
    files.server_key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files.server_key.chmod(0o600)
    return files


class TlsTerminator:
    """``socat`` accepting TLS on ``listen_port`` and forwarding plain TCP to ``target_port``."""

    def __init__(self, files: TlsFiles, target_port: int, listen_port: int | None = None,
                 host: str = "127.0.0.1") -> None:
        self.files = files
        self.host = host
        self.target_port = target_port
        self.listen_port = listen_port or free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> TlsTerminator:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat not found: apt-get install -y socat")
        listen = (
            f"OPENSSL-LISTEN:{self.listen_port},bind={self.host},reuseaddr,fork,"
            f"cert={self.files.server_cert},key={self.files.server_key},verify=0"
        )
        self._process = subprocess.Popen(
            [socat, listen, f"TCP:{self.host}:{self.target_port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_for_port(self.host, self.listen_port, timeout):
            self.stop()
            raise RuntimeError(f"socat did not listen on {self.host}:{self.listen_port}")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@dataclass(frozen=True)
class TlsBroker:
    """A broker reachable only through TLS at ``bootstrap_servers``."""

    bootstrap_servers: str
    ca_file: Path
    wrong_ca_file: Path
    broker: EmbeddedBroker
    terminator: TlsTerminator


@contextmanager
def tls_broker(directory: Path) -> Iterator[TlsBroker]:
    """Start a broker behind a socat TLS terminator; certificates are written to ``directory``."""
    files = make_certificates(directory)
    tls_port = free_port()
    broker = EmbeddedBroker(advertised_port=tls_port)
    terminator = TlsTerminator(files, target_port=broker.port, listen_port=tls_port)
    terminator.start()
    try:
        broker.start()
        yield TlsBroker(
            bootstrap_servers=f"127.0.0.1:{tls_port}",
            ca_file=files.ca_file,
            wrong_ca_file=files.wrong_ca_file,
            broker=broker,
            terminator=terminator,
        )
    finally:
        broker.stop()
        terminator.stop()
