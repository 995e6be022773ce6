#!/usr/bin/env python3
"""JWT-SVID verdicts from PyJWT and py-spiffe, for ztwim's interop tests.

stdin: JSON array of cases {"token": str, "jwks": str (JWKS / SPIFFE bundle JSON),
        "trustDomain": str, "audience": [str, ...]}
stdout: JSON array of {"pyjwt": {"ok": bool, "error"?: str, "sub"?: str},
                       "pyspiffe": {"ok": bool, "error"?: str, "sub"?: str}}

PyJWT: the key is picked from the JWKS by the token's `kid` (a token without `kid`, or with an
unknown `kid`, is rejected here), then jwt.decode(token, key, algorithms=<the 9 JWT-SVID algs>,
audience=..., options={"require": ["exp", "sub", "aud"]}) with PyJWT's own exp/nbf/iat checks
(leeway 0, real time). PyJWT knows nothing of SPIFFE: it does not check `typ`, that `sub` is a
SPIFFE ID, or that the key belongs to the subject's trust domain.

py-spiffe: JwtBundle.parse(TrustDomain(td), jwks) then JwtSvid.parse_and_validate(token, bundle,
set(audience)) (real time).
"""
import json
import sys

import jwt
from jwt import PyJWK

from spiffe import JwtBundle, JwtSvid, TrustDomain

ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]


def pyjwt_verdict(case):
    try:
        header = jwt.get_unverified_header(case["token"])
        kid = header.get("kid")
        if not kid:
            return {"ok": False, "error": "token header missing kid"}
        keys = json.loads(case["jwks"]).get("keys") or []
        match = [k for k in keys if k.get("kid") == kid]
        if not match:
            return {"ok": False, "error": f"no key for kid {kid!r}"}
        jwk = dict(match[0])
        jwk.pop("use", None)
        key = PyJWK.from_dict(jwk)
        claims = jwt.decode(
            case["token"],
            key.key,
            algorithms=ALGS,
            audience=case["audience"],
            options={"require": ["exp", "sub", "aud"]},
        )
        return {"ok": True, "sub": claims.get("sub")}
    except Exception as e:  # noqa: BLE001 - every failure is a rejection verdict
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def pyspiffe_verdict(case):
    try:
        bundle = JwtBundle.parse(TrustDomain(case["trustDomain"]), case["jwks"].encode())
        svid = JwtSvid.parse_and_validate(case["token"], bundle, set(case["audience"]))
        return {"ok": True, "sub": str(svid.spiffe_id)}
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def main():
    cases = json.load(sys.stdin)
    out = [{"pyjwt": pyjwt_verdict(c), "pyspiffe": pyspiffe_verdict(c)} for c in cases]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
