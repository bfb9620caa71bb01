#!/usr/bin/env python3
"""A certificate authority only the local stack trusts, and a certificate it signed for a webhook
receiver on loopback (localhost, 127.0.0.1, ::1): the local gateway adds the CA to the delivery
function's roots (LOCAL_WEBHOOK_CA_FILE), the tests' HTTPS receiver serves the certificate.

Usage: webhook_ca.py STATE_DIR   Prints shell `export` lines for the files it wrote.
"""
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def main(state):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("training-assignments local webhook test CA"))
        .issuer_name(name("training-assignments local webhook test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = {
        "LOCAL_WEBHOOK_CA_FILE": ("webhook-ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        "LOCAL_WEBHOOK_RECEIVER_CERT_FILE": ("webhook-receiver.pem", cert.public_bytes(serialization.Encoding.PEM)),
        "LOCAL_WEBHOOK_RECEIVER_KEY_FILE": (
            "webhook-receiver-key.pem",
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ),
    }
    for variable, (file, data) in files.items():
        path = os.path.join(state, file)
        with open(path, "wb") as out:
            out.write(data)
        print(f"export {variable}={path}")


if __name__ == "__main__":
    main(sys.argv[1])
