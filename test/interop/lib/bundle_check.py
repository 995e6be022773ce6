#!/usr/bin/env python3
"""Bundle and SVID parsing with py-spiffe (offline parsers), for ztwim's interop tests.

stdin: JSON array of {"kind": "jwtbundle"|"x509bundle"|"x509bundle-raw"|"x509svid"|"spiffeid",
                      "trustDomain": str, "data": str, "key"?: str}
  jwtbundle: data = JWKS JSON text            -> JwtBundle.parse      -> {"kids": [...sorted]}
  x509bundle: data = PEM text                 -> X509Bundle.parse     -> {"sha256": [...sorted]}
  x509bundle-raw: data = base64 concat DER    -> X509Bundle.parse_raw -> {"sha256": [...sorted]}
  x509svid: data = PEM chain, key = PEM key   -> X509Svid.parse       -> {"id": str, "chainLength": n}
  spiffeid: data = string                     -> SpiffeId(data)       -> {"id": str}
stdout: JSON array of {"ok": bool, "error"?: str, ...}
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from spiffe import JwtBundle, SpiffeId, TrustDomain, X509Bundle, X509Svid


def sha256s(certs):
    return sorted(hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest() for c in certs)


def one(c):
    try:
        kind = c["kind"]
        if kind == "spiffeid":
            return {"ok": True, "id": str(SpiffeId(c["data"]))}
        if kind == "x509svid":
            s = X509Svid.parse(c["data"].encode(), c["key"].encode())
            return {"ok": True, "id": str(s.spiffe_id), "chainLength": len(s.cert_chain)}
        td = TrustDomain(c["trustDomain"])
        if kind == "jwtbundle":
            b = JwtBundle.parse(td, c["data"].encode())
            return {"ok": True, "kids": sorted(b.jwt_authorities.keys())}
        if kind == "x509bundle":
            b = X509Bundle.parse(td, c["data"].encode())
            return {"ok": True, "sha256": sha256s(b.x509_authorities)}
        if kind == "x509bundle-raw":
            b = X509Bundle.parse_raw(td, base64.b64decode(c["data"]))
            return {"ok": True, "sha256": sha256s(b.x509_authorities)}
        return {"ok": False, "error": f"unknown kind {kind}"}
    except Exception as e:  # noqa: BLE001 - every failure is a verdict
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def main():
    json.dump([one(c) for c in json.load(sys.stdin)], sys.stdout)


if __name__ == "__main__":
    main()
