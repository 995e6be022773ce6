// Command spiffecheck is the go-spiffe oracle for ztwim's interop tests.
//
// Every subcommand prints one JSON object: {"ok": true, ...details} or {"ok": false, "error": "..."}.
// The process exits 0 in both cases; a non-zero exit means a usage error.
//
//	spiffecheck id <string>                                    spiffeid.FromString
//	spiffecheck td <string>                                    spiffeid.TrustDomainFromString
//	spiffecheck bundle <td> <file>                             spiffebundle.Parse (+ re-Marshal)
//	spiffecheck jwtbundle <td> <file>                          jwtbundle.Parse (+ re-Marshal)
//	spiffecheck x509bundle <td> <pem-file>                     x509bundle.Parse
//	spiffecheck x509svid-parse <certs.pem> <key.pem>           x509svid.Parse
//	spiffecheck x509svid-verify <chain.pem> <td> <bundle.pem> [unix-time]
//	                                                           x509svid.Verify (WithTime when given)
//	spiffecheck jwtsvid <token-file> <td> <jwks-file> <aud> [unix-time]
//	                                                           jwtsvid.ParseAndValidate (see below); the
//	                                                           JWKS is read with jwtbundle.Parse, else spiffebundle.Parse
//	                                                           (aud: comma-separated; "" = no audience check)
//	spiffecheck gen-bundle <td> <out-dir>                      writes a go-spiffe-made bundle and JWT-SVID
//	spiffecheck gen-x509-cases <td> <out-dir>                  writes good/broken X509-SVIDs + manifest.json
//	spiffecheck batch <cases.json>                             [{"cmd": "...", "args": [...]}, ...] -> JSON array
//
// Time for JWT-SVIDs: go-spiffe's jwtsvid.ParseAndValidate has no time option (it uses time.Now()
// in its final claims.Validate step). When [unix-time] is given we still run the real
// ParseAndValidate. Every check before the time checks (parse, alg allow-list, typ, sub, exp presence,
// SPIFFE ID, kid, bundle, authority, signature, audience) runs first, so if it fails for any reason
// other than a time check ("token has expired", nbf, iat), that result is final. If it fails
// only on a time check, or succeeds, we run the same go-jose claims.Validate call again
// (jwt.Expected{AnyAudience: aud, Time: unix-time}, 60 s default leeway) and report its result,
// converting errors the way go-spiffe does. The result has "timeMode": "real" or "replayed".
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

type result map[string]any

func fail(err error) result { return result{"ok": false, "error": err.Error()} }

func ok(r result) result {
	if r == nil {
		r = result{}
	}
	r["ok"] = true
	return r
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func need(args []string, n int, usage string) {
	if len(args) < n {
		panic(usageError{"usage: spiffecheck " + usage})
	}
}

func run(cmd string, args []string) result {
	switch cmd {
	case "id":
		need(args, 1, "id <string>")
		id, err := spiffeid.FromString(args[0])
		if err != nil {
			return fail(err)
		}
		return ok(result{"id": id.String(), "trustDomain": id.TrustDomain().Name(), "path": id.Path()})
	case "td":
		need(args, 1, "td <string>")
		td, err := spiffeid.TrustDomainFromString(args[0])
		if err != nil {
			return fail(err)
		}
		return ok(result{"trustDomain": td.Name(), "idString": td.IDString()})
	case "bundle":
		need(args, 2, "bundle <td> <file>")
		return cmdBundle(args[0], args[1])
	case "jwtbundle":
		need(args, 2, "jwtbundle <td> <file>")
		return cmdJWTBundle(args[0], args[1])
	case "x509bundle":
		need(args, 2, "x509bundle <td> <pem-file>")
		td, err := spiffeid.TrustDomainFromString(args[0])
		if err != nil {
			return fail(err)
		}
		b, err := x509bundle.Load(td, args[1])
		if err != nil {
			return fail(err)
		}
		return ok(result{"x509Authorities": certSummaries(b.X509Authorities())})
	case "x509svid-parse":
		need(args, 2, "x509svid-parse <certs.pem> <key.pem>")
		return cmdX509Parse(args[0], args[1])
	case "x509svid-verify":
		need(args, 3, "x509svid-verify <chain.pem> <td> <bundle.pem> [unix-time]")
		return cmdX509Verify(args[0], args[1], args[2], optArg(args, 3))
	case "jwtsvid":
		need(args, 4, "jwtsvid <token-file> <td> <jwks-file> <aud> [unix-time]")
		return cmdJWTSVID(args[0], args[1], args[2], args[3], optArg(args, 4))
	case "gen-bundle":
		need(args, 2, "gen-bundle <td> <out-dir>")
		return cmdGenBundle(args[0], args[1])
	case "gen-x509-cases":
		need(args, 2, "gen-x509-cases <td> <out-dir>")
		return cmdGenX509Cases(args[0], args[1])
	default:
		panic(usageError{fmt.Sprintf("unknown command %q", cmd)})
	}
}

func optArg(args []string, i int) string {
	if len(args) > i {
		return args[i]
	}
	return ""
}

func parseUnix(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad unix time %q", s)
	}
	return time.Unix(n, 0), nil
}

func certSummaries(certs []*x509.Certificate) []result {
	out := make([]result, 0, len(certs))
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		uris := make([]string, 0, len(c.URIs))
		for _, u := range c.URIs {
			uris = append(uris, u.String())
		}
		out = append(out, result{
			"sha256":  hex.EncodeToString(sum[:]),
			"subject": c.Subject.String(),
			"uris":    uris,
			"isCA":    c.IsCA,
		})
	}
	return out
}

func jwtKeySummaries(keys map[string]crypto.PublicKey) []result {
	kids := make([]string, 0, len(keys))
	for kid := range keys {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	out := make([]result, 0, len(kids))
	for _, kid := range kids {
		der, err := x509.MarshalPKIXPublicKey(keys[kid])
		spki := ""
		if err == nil {
			spki = base64.StdEncoding.EncodeToString(der)
		}
		out = append(out, result{"kid": kid, "type": fmt.Sprintf("%T", keys[kid]), "spki": spki})
	}
	return out
}

// trustDomainAndFile parses a trust domain argument and reads the file that goes with it.
func trustDomainAndFile(tdStr, file string) (spiffeid.TrustDomain, []byte, error) {
	td, err := spiffeid.TrustDomainFromString(tdStr)
	if err != nil {
		return spiffeid.TrustDomain{}, nil, err
	}
	raw, err := os.ReadFile(file)
	return td, raw, err
}

func cmdBundle(tdStr, file string) result {
	td, raw, err := trustDomainAndFile(tdStr, file)
	if err != nil {
		return fail(err)
	}
	b, err := spiffebundle.Parse(td, raw)
	if err != nil {
		return fail(err)
	}
	r := result{
		"trustDomain":     b.TrustDomain().Name(),
		"x509Authorities": certSummaries(b.X509Authorities()),
		"jwtAuthorities":  jwtKeySummaries(b.JWTAuthorities()),
	}
	if hint, set := b.RefreshHint(); set {
		r["refreshHintSeconds"] = hint.Seconds()
	}
	if seq, set := b.SequenceNumber(); set {
		r["sequenceNumber"] = strconv.FormatUint(seq, 10)
	}
	out, err := b.Marshal()
	if err != nil {
		return fail(fmt.Errorf("re-marshal: %w", err))
	}
	r["marshaled"] = string(out)
	return ok(r)
}

func cmdJWTBundle(tdStr, file string) result {
	td, raw, err := trustDomainAndFile(tdStr, file)
	if err != nil {
		return fail(err)
	}
	b, err := jwtbundle.Parse(td, raw)
	if err != nil {
		return fail(err)
	}
	out, err := b.Marshal()
	if err != nil {
		return fail(fmt.Errorf("re-marshal: %w", err))
	}
	return ok(result{
		"trustDomain":    b.TrustDomain().Name(),
		"jwtAuthorities": jwtKeySummaries(b.JWTAuthorities()),
		"marshaled":      string(out),
	})
}

func cmdX509Parse(certFile, keyFile string) result {
	certs, err := os.ReadFile(certFile)
	if err != nil {
		return fail(err)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return fail(err)
	}
	s, err := x509svid.Parse(certs, key)
	if err != nil {
		return fail(err)
	}
	return ok(result{"id": s.ID.String(), "chainLength": len(s.Certificates)})
}

func loadCertsPEM(file string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	return certs, nil
}

func cmdX509Verify(chainFile, tdStr, bundleFile, at string) result {
	td, err := spiffeid.TrustDomainFromString(tdStr)
	if err != nil {
		return fail(err)
	}
	chain, err := loadCertsPEM(chainFile)
	if err != nil {
		return fail(fmt.Errorf("chain: %w", err))
	}
	bundle, err := x509bundle.Load(td, bundleFile)
	if err != nil {
		return fail(err)
	}
	var opts []x509svid.VerifyOption
	if at != "" {
		t, err := parseUnix(at)
		if err != nil {
			panic(usageError{err.Error()})
		}
		opts = append(opts, x509svid.WithTime(t))
	}
	id, chains, err := x509svid.Verify(chain, bundle, opts...)
	if err != nil {
		return fail(err)
	}
	lens := make([]int, 0, len(chains))
	for _, c := range chains {
		lens = append(lens, len(c))
	}
	return ok(result{"id": id.String(), "chainLengths": lens})
}

func isTimeError(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return msg == "jwtsvid: token has expired" ||
		errors.Is(err, jwt.ErrNotValidYet) || errors.Is(err, jwt.ErrIssuedInTheFuture) ||
		strings.Contains(msg, "token not valid yet") || strings.Contains(msg, "issued in the future")
}

func cmdJWTSVID(tokenFile, tdStr, jwksFile, aud, at string) result {
	td, err := spiffeid.TrustDomainFromString(tdStr)
	if err != nil {
		return fail(err)
	}
	tokRaw, err := os.ReadFile(tokenFile)
	if err != nil {
		return fail(err)
	}
	token := strings.TrimSpace(string(tokRaw))
	jwks, err := os.ReadFile(jwksFile)
	if err != nil {
		return fail(err)
	}
	// A jwtbundle (Workload API JWKS, every key has a kid) or, failing that, a SPIFFE bundle.
	bundle, err := jwtbundle.Parse(td, jwks)
	if err != nil {
		sb, serr := spiffebundle.Parse(td, jwks)
		if serr != nil {
			return fail(err)
		}
		bundle = sb.JWTBundle()
	}
	var audience []string
	if aud != "" {
		audience = strings.Split(aud, ",")
	}
	svid, err := jwtsvid.ParseAndValidate(token, bundle, audience)
	if at == "" {
		if err != nil {
			return fail(err)
		}
		return ok(svidResult(svid, "real"))
	}
	if err != nil && !isTimeError(err) {
		return fail(err)
	}
	now, perr := parseUnix(at)
	if perr != nil {
		panic(usageError{perr.Error()})
	}
	// Every non-time check passed: replay go-spiffe's final claims.Validate at the given time.
	tok, perr := jwt.ParseSigned(token, []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512,
	})
	if perr != nil {
		return fail(fmt.Errorf("replay: %w", perr))
	}
	var claims jwt.Claims
	if perr := tok.UnsafeClaimsWithoutVerification(&claims); perr != nil {
		return fail(fmt.Errorf("replay: %w", perr))
	}
	if verr := claims.Validate(jwt.Expected{AnyAudience: audience, Time: now}); verr != nil {
		switch verr {
		case jwt.ErrExpired:
			verr = errors.New("jwtsvid: token has expired")
		case jwt.ErrInvalidAudience:
			verr = fmt.Errorf("jwtsvid: expected audience in %q (audience=%q)", audience, claims.Audience)
		}
		return fail(verr)
	}
	if svid == nil {
		svid, perr = jwtsvid.ParseInsecure(token, nil)
		if perr != nil && !isTimeError(perr) {
			return fail(fmt.Errorf("replay: %w", perr))
		}
		if svid == nil {
			id, _ := spiffeid.FromString(claims.Subject)
			return ok(result{"id": id.String(), "audience": []string(claims.Audience), "expiry": claims.Expiry.Time().Unix(), "timeMode": "replayed"})
		}
	}
	return ok(svidResult(svid, "replayed"))
}

func svidResult(s *jwtsvid.SVID, mode string) result {
	return result{"id": s.ID.String(), "audience": s.Audience, "expiry": s.Expiry.Unix(), "claims": s.Claims, "timeMode": mode}
}

// cmdGenBundle writes files made by go-spiffe / go-jose, for the "they produce, we consume" direction:
// bundle.json (spiffebundle: one X.509 authority, ES256/ES384/RS256 JWT authorities, seq 42, hint 300s),
// jwtbundle.json (jwtbundle.Marshal of the same JWT keys), ca.pem, and a JWT-SVID signed by each
// JWT key as SPIRE would (header alg, kid, typ JWT; claims sub, aud [..], iat, exp = now+5min)
// in jwt-<alg>.txt, plus svid.pem / svid-key.pem (a leaf X509-SVID spiffe://<td>/go/workload).
func cmdGenBundle(tdStr, dir string) result {
	td, err := spiffeid.TrustDomainFromString(tdStr)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"SPIFFE"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		URIs:                  []*url.URL{td.ID().URL()},
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return fail(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafID := spiffeid.RequireFromPath(td, "/go/workload")
	leafTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"SPIRE"}},
		NotBefore:             now.Add(-10 * time.Second),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{leafID.URL()},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, leafKey.Public(), caKey)
	if err != nil {
		return fail(err)
	}
	leafKeyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)

	es256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rs256, _ := rsa.GenerateKey(rand.Reader, 2048)
	signers := []struct {
		alg jose.SignatureAlgorithm
		kid string
		key crypto.Signer
	}{
		{jose.ES256, "go-es256-kid", es256},
		{jose.ES384, "go-es384-kid", es384},
		{jose.RS256, "go-rs256-kid", rs256},
	}
	b := spiffebundle.New(td)
	b.AddX509Authority(ca)
	jb := jwtbundle.New(td)
	for _, s := range signers {
		if err := b.AddJWTAuthority(s.kid, s.key.Public()); err != nil {
			return fail(err)
		}
		if err := jb.AddJWTAuthority(s.kid, s.key.Public()); err != nil {
			return fail(err)
		}
	}
	b.SetSequenceNumber(42)
	b.SetRefreshHint(300 * time.Second)
	bundleJSON, err := b.Marshal()
	if err != nil {
		return fail(err)
	}
	jwtJSON, err := jb.Marshal()
	if err != nil {
		return fail(err)
	}
	files := map[string][]byte{
		"bundle.json":    bundleJSON,
		"jwtbundle.json": jwtJSON,
		"ca.pem":         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"svid.pem":       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		"svid-key.pem":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKeyDER}),
	}
	tokens := result{}
	for _, s := range signers {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: jose.JSONWebKey{Key: s.key, KeyID: s.kid}},
			new(jose.SignerOptions).WithType("JWT"))
		if err != nil {
			return fail(err)
		}
		tok, err := jwt.Signed(sig).Claims(jwt.Claims{
			Subject:  leafID.String(),
			Audience: jwt.Audience{"ztwim-test"},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(now.Add(5 * time.Minute)),
		}).Serialize()
		if err != nil {
			return fail(err)
		}
		name := "jwt-" + string(s.alg) + ".txt"
		files[name] = []byte(tok)
		tokens[string(s.alg)] = filepath.Join(dir, name)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fail(err)
		}
	}
	return ok(result{
		"dir": dir, "bundle": filepath.Join(dir, "bundle.json"), "jwtBundle": filepath.Join(dir, "jwtbundle.json"),
		"caPem": filepath.Join(dir, "ca.pem"), "svidPem": filepath.Join(dir, "svid.pem"), "svidKeyPem": filepath.Join(dir, "svid-key.pem"),
		"svidId": leafID.String(), "tokens": tokens, "audience": "ztwim-test",
		"caSha256": certSummaries([]*x509.Certificate{ca})[0]["sha256"],
	})
}

type batchCase struct {
	Cmd  string   `json:"cmd"`
	Args []string `json:"args"`
}

func runSafe(cmd string, args []string) (r result, uerr error) {
	defer func() {
		if p := recover(); p != nil {
			if u, isUsage := p.(usageError); isUsage {
				uerr = u
				return
			}
			r = fail(fmt.Errorf("panic: %v", p))
		}
	}()
	return run(cmd, args), nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: spiffecheck <command> [args...] (see source)")
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if os.Args[1] == "batch" {
		if len(os.Args) < 3 {
			fmt.Fprintln(os.Stderr, "usage: spiffecheck batch <cases.json|->")
			os.Exit(2)
		}
		var raw []byte
		var err error
		if os.Args[2] == "-" {
			raw, err = readAll(os.Stdin)
		} else {
			raw, err = os.ReadFile(os.Args[2])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		var cases []batchCase
		if err := json.Unmarshal(raw, &cases); err != nil {
			fmt.Fprintln(os.Stderr, "batch: ", err)
			os.Exit(2)
		}
		out := make([]result, 0, len(cases))
		for _, c := range cases {
			r, uerr := runSafe(c.Cmd, c.Args)
			if uerr != nil {
				fmt.Fprintln(os.Stderr, uerr)
				os.Exit(2)
			}
			out = append(out, r)
		}
		_ = enc.Encode(out)
		return
	}
	r, uerr := runSafe(os.Args[1], os.Args[2:])
	if uerr != nil {
		fmt.Fprintln(os.Stderr, uerr)
		os.Exit(2)
	}
	_ = enc.Encode(r)
}

func readAll(f *os.File) ([]byte, error) { return io.ReadAll(f) }
