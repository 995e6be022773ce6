"""Fetches a JWT-SVID and an X509-SVID with py-spiffe from SPIFFE_ENDPOINT_SOCKET; prints JSON."""
import json
import sys

from spiffe import JwtSource, X509Source

audience = sys.argv[1]
out = {}
with JwtSource() as source:
    svid = source.fetch_svid(audience={audience})
    out["jwt"] = {"spiffe_id": str(svid.spiffe_id), "audience": sorted(svid.audience), "token": svid.token}
with X509Source() as source:
    x = source.svid
    out["x509"] = {"spiffe_id": str(x.spiffe_id), "chain_len": len(x.cert_chain)}
print(json.dumps(out))
