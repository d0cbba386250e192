"""A GitHub App's key pair for tests: the stand-in checks JWTs with the public half, arl-bot signs with the private."""

from __future__ import annotations

import functools

APP_ID = 31337


@functools.cache
def app_key() -> tuple[str, str]:
    """(private PEM, public PEM) of an RSA key, as GitHub gives an App."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public
