"""Validate a JWT-SVID with PyJWT through OIDC discovery.

Usage: validate.py ISSUER CA_PEM TOKEN AUDIENCE
Fetches ISSUER/.well-known/openid-configuration (TLS verified with CA_PEM), requires its
issuer to equal ISSUER, then PyJWKClient(jwks_uri) picks the key by kid and jwt.decode checks
signature, aud, iss, exp. Prints one JSON object; exit 0 when accepted, 1 when refused.
"""
import json
import ssl
import sys
import urllib.request

import jwt
from jwt import PyJWKClient


def main() -> int:
    issuer, ca_path, token, audience = sys.argv[1:5]
    ctx = ssl.create_default_context(cafile=ca_path)
    try:
        with urllib.request.urlopen(issuer.rstrip("/") + "/.well-known/openid-configuration", context=ctx, timeout=10) as resp:
            if resp.status != 200:
                raise RuntimeError(f"discovery status {resp.status}")
            doc = json.load(resp)
        if doc.get("issuer") != issuer:
            raise RuntimeError(f"issuer mismatch: {doc.get('issuer')!r} != {issuer!r}")
        client = PyJWKClient(doc["jwks_uri"], ssl_context=ctx, cache_jwk_set=False)
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256", "ES256", "ES384"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except Exception as e:  # noqa: BLE001 - report every refusal as data
        print(json.dumps({"ok": False, "error_type": type(e).__name__, "error": str(e)}))
        return 1
    print(json.dumps({"ok": True, "claims": claims, "jwt_version": jwt.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
