"""Starts the real OpenID Connect provider of tests/peers/oidc (node-oidc-provider
under Node) on a free loopback port, and signs a person in at it like a
browser would (its development login form, over real HTTP)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

PEER_DIR = Path(__file__).resolve().parents[1] / "peers" / "oidc"
CLIENT_ID = "tenantry-test"
CLIENT_SECRET = "tenantry-test-secret-0123456789"
USERS = {
    "alice": {"email": "alice@acme.test", "name": "Alice Anders", "groups": ["engineering", "tenantry-admins"]},
    "bob": {"email": "bob@acme.test", "name": "Bob Brown", "groups": ["sales"]},
    "mallory": {"email": "owner@globex.test", "name": "Mallory", "groups": []},
    "carol": {"email": "carol@acme.test", "name": "Carol Chen", "groups": ["tenantry-managers"]},
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OidcPeer:
    def __init__(self, redirect_uris: list[str], users: dict | None = None):
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.users = dict(users or USERS)
        self.redirect_uris = redirect_uris
        self.proc: subprocess.Popen | None = None

    def start(self) -> OidcPeer:
        node = shutil.which("node")
        if node is None or not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
            import pytest

            pytest.skip("the OIDC peer needs Node and `npm ci` in tests/peers/oidc (.ci/run does it)")
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "users": self.users,
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": self.redirect_uris,
                    "grant_types": ["authorization_code"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            ],
        }
        env = {**os.environ, "OIDC_PEER_CONFIG": json.dumps(config)}
        self.proc = subprocess.Popen(
            [node, "provider.mjs"], cwd=PEER_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"the OIDC peer did not start: {line!r}")
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("the OIDC peer does not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def sign_in(self, authorize_url: str, login: str, stop_at: str) -> str:
        """Follow ``authorize_url`` at the provider as a browser, log in as
        ``login`` on its form, and return the redirect back to us (the first
        URL starting with ``stop_at``)."""
        s = requests.Session()
        url = authorize_url
        for _ in range(15):
            if url.startswith(stop_at):
                return url
            r = s.get(url, allow_redirects=False, timeout=5)
            if r.status_code in (302, 303):
                url = urljoin(url, r.headers["Location"])
                continue
            if r.status_code == 200 and 'name="login"' in r.text:
                action = r.text.split('action="', 1)[1].split('"', 1)[0]
                r = s.post(
                    urljoin(url, action),
                    data={"prompt": "login", "login": login, "password": "any"},
                    allow_redirects=False,
                    timeout=5,
                )
                url = urljoin(url, r.headers["Location"])
                continue
            raise AssertionError(f"unexpected answer from the provider at {url}: {r.status_code} {r.text[:300]}")
        raise AssertionError("too many redirects at the provider")
