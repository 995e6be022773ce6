package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// x509Case is one generated X509-SVID case. Files are PEM; "expect" documents what go-spiffe is
// expected to say (the tests ask go-spiffe anyway and hard-code the important verdicts).
type x509Case struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Chain       string `json:"chain"`  // leaf first, then intermediates
	Key         string `json:"key"`    // PKCS#8 leaf key
	Bundle      string `json:"bundle"` // trusted roots for the case's trust domain
	TrustDomain string `json:"trustDomain"`
}

type caseGen struct {
	dir    string
	td     string
	now    time.Time
	cases  []x509Case
	serial int64
}

type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (g *caseGen) nextSerial() *big.Int {
	g.serial++
	return big.NewInt(g.serial)
}

func mustURL(s string) *url.URL {
	// Build the URL by hand so that unusual hosts (uppercase) are kept verbatim.
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func newECKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func (g *caseGen) ca(name string, parent *issuer, mod func(*x509.Certificate)) *issuer {
	key := newECKey()
	tmpl := &x509.Certificate{
		SerialNumber:          g.nextSerial(),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"SPIFFE"}, CommonName: name},
		NotBefore:             g.now.Add(-3 * time.Hour),
		NotAfter:              g.now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		URIs:                  []*url.URL{mustURL("spiffe://" + g.td)},
	}
	if mod != nil {
		mod(tmpl)
	}
	parentCert, parentKey := tmpl, crypto.Signer(key)
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return &issuer{cert: c, key: key}
}

func (g *caseGen) leafTemplate(id string) *x509.Certificate {
	t := &x509.Certificate{
		SerialNumber:          g.nextSerial(),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"SPIRE"}},
		NotBefore:             g.now.Add(-10 * time.Second),
		NotAfter:              g.now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if id != "" {
		t.URIs = []*url.URL{mustURL(id)}
	}
	return t
}

func pemCert(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func pemKey(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (g *caseGen) write(name string, data []byte) string {
	p := filepath.Join(g.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		panic(err)
	}
	return p
}

// add signs tmpl with iss (leaf key: key, or a fresh P-256 key) and records the case.
func (g *caseGen) add(name, desc string, tmpl *x509.Certificate, iss *issuer, intermediates []*x509.Certificate, roots []*x509.Certificate, key crypto.Signer, keyForFile crypto.Signer) {
	if key == nil {
		key = newECKey()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, iss.cert, key.Public(), iss.key)
	if err != nil {
		panic(name + ": " + err.Error())
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	if keyForFile == nil {
		keyForFile = key
	}
	chain := append([]*x509.Certificate{leaf}, intermediates...)
	g.cases = append(g.cases, x509Case{
		Name:        name,
		Description: desc,
		Chain:       g.write(name+".chain.pem", pemCert(chain...)),
		Key:         g.write(name+".key.pem", pemKey(keyForFile)),
		Bundle:      g.write(name+".bundle.pem", pemCert(roots...)),
		TrustDomain: g.td,
	})
}

// cmdGenX509Cases writes a matrix of good and broken X509-SVIDs (made with Go's crypto/x509)
// plus manifest.json, for comparing verdicts of go-spiffe, ztwim and openssl.
func cmdGenX509Cases(td, dir string) result {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	g := &caseGen{dir: dir, td: td, now: time.Now()}
	root := g.ca("root", nil, nil)
	otherRoot := g.ca("other-root", nil, nil)
	inter := g.ca("intermediate", root, nil)
	interNotCA := g.ca("intermediate-not-ca", root, func(c *x509.Certificate) {
		c.IsCA = false
		c.KeyUsage = x509.KeyUsageDigitalSignature
	})
	pathLen0 := g.ca("intermediate-pathlen0", root, func(c *x509.Certificate) {
		c.MaxPathLen = 0
		c.MaxPathLenZero = true
	})
	below := g.ca("intermediate-below-pathlen0", pathLen0, nil)
	expiredRoot := g.ca("expired-root", nil, func(c *x509.Certificate) {
		c.NotBefore = g.now.Add(-48 * time.Hour)
		c.NotAfter = g.now.Add(-24 * time.Hour)
	})
	roots := []*x509.Certificate{root.cert}
	id := "spiffe://" + td + "/workload"

	g.add("good", "leaf signed by the root", g.leafTemplate(id), root, nil, roots, nil, nil)
	g.add("good-intermediate", "leaf signed by an intermediate, chain carries it", g.leafTemplate(id), inter, []*x509.Certificate{inter.cert}, roots, nil, nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fail(err)
	}
	g.add("good-rsa", "RSA-2048 leaf key", g.leafTemplate(id), root, nil, roots, rsaKey, nil)
	noEKU := g.leafTemplate(id)
	noEKU.ExtKeyUsage = nil
	g.add("no-eku", "leaf without extKeyUsage (allowed)", noEKU, root, nil, roots, nil, nil)
	serverOnly := g.leafTemplate(id)
	serverOnly.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	g.add("eku-server-only", "EKU serverAuth only (go-spiffe Verify ignores EKU)", serverOnly, root, nil, roots, nil, nil)
	withDNS := g.leafTemplate(id)
	withDNS.DNSNames = []string{"workload.example.org"}
	g.add("with-dns", "URI SAN plus a DNS SAN", withDNS, root, nil, roots, nil, nil)

	caLeaf := g.leafTemplate(id)
	caLeaf.IsCA = true
	caLeaf.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign
	g.add("ca-leaf", "leaf with CA=true and keyCertSign", caLeaf, root, nil, roots, nil, nil)
	caFlag := g.leafTemplate(id)
	caFlag.IsCA = true
	g.add("ca-flag-leaf", "leaf with CA=true, digitalSignature only", caFlag, root, nil, roots, nil, nil)
	g.add("no-uri", "leaf without a URI SAN", func() *x509.Certificate {
		t := g.leafTemplate("")
		t.DNSNames = []string{"workload.example.org"}
		return t
	}(), root, nil, roots, nil, nil)
	twoURIs := g.leafTemplate(id)
	twoURIs.URIs = append(twoURIs.URIs, mustURL("spiffe://"+td+"/other"))
	g.add("two-uris", "leaf with two URI SANs", twoURIs, root, nil, roots, nil, nil)
	expired := g.leafTemplate(id)
	expired.NotBefore = g.now.Add(-2 * time.Hour)
	expired.NotAfter = g.now.Add(-time.Hour)
	g.add("expired", "leaf expired an hour ago", expired, root, nil, roots, nil, nil)
	future := g.leafTemplate(id)
	future.NotBefore = g.now.Add(time.Hour)
	future.NotAfter = g.now.Add(2 * time.Hour)
	g.add("not-yet-valid", "leaf valid from in an hour", future, root, nil, roots, nil, nil)
	g.add("wrong-root", "leaf signed by another root", g.leafTemplate(id), otherRoot, nil, roots, nil, nil)
	certSign := g.leafTemplate(id)
	certSign.KeyUsage |= x509.KeyUsageCertSign
	g.add("keycertsign-leaf", "non-CA leaf with keyCertSign", certSign, root, nil, roots, nil, nil)
	crlSign := g.leafTemplate(id)
	crlSign.KeyUsage |= x509.KeyUsageCRLSign
	g.add("crlsign-leaf", "non-CA leaf with cRLSign", crlSign, root, nil, roots, nil, nil)
	noDS := g.leafTemplate(id)
	noDS.KeyUsage = x509.KeyUsageKeyEncipherment
	g.add("no-digitalsignature", "leaf without digitalSignature (Verify passes, Parse fails)", noDS, root, nil, roots, nil, nil)
	g.add("root-path-id", "leaf ID without a path (Verify passes, Parse fails)", g.leafTemplate("spiffe://"+td), root, nil, roots, nil, nil)
	g.add("other-td", "leaf in another trust domain signed by this root", g.leafTemplate("spiffe://other.test/workload"), root, nil, roots, nil, nil)
	g.add("bad-uri-uppercase-td", "leaf URI SAN with an uppercase trust domain", g.leafTemplate("spiffe://Example.ORG/workload"), root, nil, roots, nil, nil)
	g.add("bad-uri-scheme", "leaf URI SAN with https scheme", g.leafTemplate("https://"+td+"/workload"), root, nil, roots, nil, nil)
	g.add("intermediate-not-ca", "signed by an intermediate whose CA flag is false", g.leafTemplate(id), interNotCA, []*x509.Certificate{interNotCA.cert}, roots, nil, nil)
	g.add("missing-intermediate", "signed by an intermediate the chain omits", g.leafTemplate(id), inter, nil, roots, nil, nil)
	g.add("pathlen-exceeded", "root > pathlen=0 intermediate > intermediate > leaf", g.leafTemplate(id), below, []*x509.Certificate{below.cert, pathLen0.cert}, roots, nil, nil)
	g.add("expired-root", "valid leaf under an expired root", g.leafTemplate(id), expiredRoot, nil, []*x509.Certificate{expiredRoot.cert}, nil, nil)
	g.add("key-mismatch", "valid chain, private key of another keypair (Parse fails)", g.leafTemplate(id), root, nil, roots, nil, newECKey())

	manifest, _ := json.MarshalIndent(g.cases, "", "  ")
	mpath := g.write("manifest.json", manifest)
	return ok(result{"manifest": mpath, "count": len(g.cases), "root": g.write("root.pem", pemCert(root.cert)), "intermediate": g.write("intermediate.pem", pemCert(inter.cert))})
}
