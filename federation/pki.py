"""Certificates and node keys for a federation over TLS with node authentication.

For a pilot or a test: a private CA, a SuperLink certificate signed by it, and one ECDSA P-384 key pair
per hospital node (OpenSSH format, as `ssh-keygen -t ecdsa -b 384` writes them). A production
federation would take the SuperLink's certificate from the hospital group's own CA; the node keys are
made by each hospital, and only the public key is sent to the coordinator to register.
"""

import datetime
import ipaddress
import os
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from neurofed.files import publish, staged


class KeysExist(Exception):
    """Files that a new key would replace exist already (their paths, comma-separated)."""


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    """Write under a temporary name (created 0600) and rename: a private key is never readable by others,
    not even for a moment or when a file of that name had wider permissions, and never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            if not private:
                os.fchmod(fh.fileno(), 0o644)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _refuse_existing(paths: list[Path]) -> None:
    existing = [path for path in paths if path.exists()]
    if existing:
        raise KeysExist(", ".join(str(path) for path in existing))


def _write_together(folder: Path, files: dict[str, tuple[bytes, bool]]) -> dict[str, Path]:
    """Write ``{name: (data, private)}`` into ``folder`` as one set: made in a staging folder there, then
    renamed into place. A failure part-way (a full disk) leaves the previous files as they were: a CA
    key without its certificate, or a node key without its public half, cuts nodes off as surely as a
    lost one."""
    with staged(folder, "keys") as staging:
        for name, (data, private) in files.items():
            _write(staging / name, data, private=private)
        publish(staging, folder)
    return {name: folder / name for name in files}


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_superlink_certificates(folder: Path, hosts: list[str], days: int = 365, force: bool = False) -> dict[str, Path]:
    """ca.crt, ca.key, server.pem, server.key in `folder`. The server certificate names 127.0.0.1 too:
    the SuperLink's own app processes connect to it there.

    Raises ``KeysExist`` (naming them) when any of those files exists, unless ``force``: a new CA cuts
    off every node enrolled with the old one. Raises ``OSError`` when ``folder`` cannot be written to.
    """
    folder = Path(folder)
    if not force:
        _refuse_existing([folder / name for name in ("ca.crt", "ca.key", "server.pem", "server.key")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NeuroFed federation CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA384()))
    server_key = ec.generate_private_key(ec.SECP384R1())
    names = []
    for host in dict.fromkeys([*hosts, "127.0.0.1", "localhost"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(
                  # A common name holds at most 64 characters; TLS checks the alternative names below anyway.
                  NameOID.COMMON_NAME, hosts[0] if hosts and len(hosts[0]) <= 64 else "superlink")]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA384()))
    written = _write_together(folder, {
        "ca.crt": (ca.public_bytes(serialization.Encoding.PEM), False),
        "ca.key": (_pem_key(ca_key), True),
        "server.pem": (server.public_bytes(serialization.Encoding.PEM), False),
        "server.key": (_pem_key(server_key), True),
    })
    return {"ca": written["ca.crt"], "ca_key": written["ca.key"], "cert": written["server.pem"],
            "key": written["server.key"]}


def make_node_key(folder: Path, name: str, force: bool = False) -> tuple[Path, Path]:
    """<name>.key (private, OpenSSH) and <name>.pub for one node.

    Raises ``KeysExist`` when either exists, unless ``force``: the registered public key would no longer
    match the node's key. Raises ``OSError`` when ``folder`` cannot be written to.
    """
    folder = Path(folder)
    if not force:
        _refuse_existing([folder / f"{name}.key", folder / f"{name}.pub"])
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    written = _write_together(folder, {f"{name}.key": (private, True),
                                       f"{name}.pub": (public + f" {name}\n".encode(), False)})
    return written[f"{name}.key"], written[f"{name}.pub"]
