"""Throwaway TLS material for tests: a CA, a server certificate for ``sink.test`` and a client certificate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


class Certs:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module", name="certs")
def certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, a server certificate for ``sink.test`` only (not 127.0.0.1), and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("TLS tests need the openssl command")
    directory = tmp_path_factory.mktemp("certs")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(directory, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=ca")
    (directory / "server.ext").write_text("subjectAltName=DNS:sink.test\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl(directory, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        _openssl(
            directory,
            *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"),
            *("-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext"),
        )
    return Certs(directory)
