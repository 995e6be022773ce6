// capjwt validates a JWT the way Vault's JWT auth method does for a role with
// role_type=jwt, an oidc_discovery_url (+ oidc_discovery_ca_pem), bound_audiences,
// bound_claims_type=glob with bound_claims on "sub", and user_claim=sub.
// It uses github.com/hashicorp/cap/jwt, the library behind vault-plugin-auth-jwt.
//
// Usage: capjwt -issuer URL -ca CA.pem -token JWT -aud AUD -sub-glob 'spiffe://td/*' \
// [-bound-issuer URL] [-algs RS256,ES256,ES384] [-role NAME]
// Prints one JSON object: {"ok":true,"sub":...,"claims":{...}} or {"ok":false,"stage":...,"error":...}.
// With -role (examples/vault-jwt-auth.sh), an accepted token also reports what a Vault login
// would grant: {"role":NAME,"user":<user_claim value>} (the entity alias name is the user claim).
// Exit code 0 when accepted, 1 when refused, 2 on usage errors.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/cap/jwt"
	"github.com/ryanuber/go-glob"
)

type result struct {
	OK     bool                   `json:"ok"`
	Stage  string                 `json:"stage,omitempty"`
	Error  string                 `json:"error,omitempty"`
	Sub    string                 `json:"sub,omitempty"`
	Role   string                 `json:"role,omitempty"`
	User   string                 `json:"user,omitempty"`
	Claims map[string]interface{} `json:"claims,omitempty"`
}

func emit(r result) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	if r.OK {
		os.Exit(0)
	}
	os.Exit(1)
}

func fail(stage string, err error) {
	emit(result{OK: false, Stage: stage, Error: err.Error()})
}

func main() {
	issuer := flag.String("issuer", "", "oidc_discovery_url")
	caPath := flag.String("ca", "", "oidc_discovery_ca_pem file")
	token := flag.String("token", "", "the JWT")
	aud := flag.String("aud", "", "bound_audiences (comma separated)")
	subGlob := flag.String("sub-glob", "", "bound_claims {\"sub\": <glob>} with bound_claims_type=glob")
	boundIssuer := flag.String("bound-issuer", "", "bound_issuer (defaults to -issuer)")
	algs := flag.String("algs", "", "jwt_supported_algs (comma separated; empty = all, as Vault login does)")
	role := flag.String("role", "", "role name to report on success (as Vault's login does)")
	flag.Parse()
	if *issuer == "" || *token == "" || *aud == "" || *subGlob == "" {
		fmt.Fprintln(os.Stderr, "usage: capjwt -issuer URL -ca CA.pem -token JWT -aud AUD -sub-glob GLOB")
		os.Exit(2)
	}
	if *boundIssuer == "" {
		*boundIssuer = *issuer
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	caPEM := ""
	if *caPath != "" {
		b, err := os.ReadFile(*caPath)
		if err != nil {
			fail("config", err)
		}
		caPEM = string(b)
	}

	// Vault: config write probes the discovery URL (NewOIDCDiscoveryKeySet).
	ks, err := jwt.NewOIDCDiscoveryKeySet(ctx, *issuer, caPEM)
	if err != nil {
		fail("discovery", fmt.Errorf("error checking oidc discovery URL: %w", err))
	}
	v, err := jwt.NewValidator(ks)
	if err != nil {
		fail("config", err)
	}

	// Vault login uses all supported algs when jwt_supported_algs is empty.
	var supported []jwt.Alg
	if *algs == "" {
		supported = []jwt.Alg{jwt.RS256, jwt.RS384, jwt.RS512, jwt.ES256, jwt.ES384, jwt.ES512, jwt.PS256, jwt.PS384, jwt.PS512, jwt.EdDSA}
	} else {
		for _, a := range strings.Split(*algs, ",") {
			supported = append(supported, jwt.Alg(strings.TrimSpace(a)))
		}
	}
	var audiences []string
	for _, a := range strings.Split(*aud, ",") {
		if a = strings.TrimSpace(a); a != "" {
			audiences = append(audiences, a)
		}
	}

	claims, err := v.Validate(ctx, *token, jwt.Expected{
		Issuer:            *boundIssuer,
		Audiences:         audiences,
		SigningAlgorithms: supported,
		ClockSkewLeeway:   60 * time.Second,
		ExpirationLeeway:  150 * time.Second,
		NotBeforeLeeway:   150 * time.Second,
	})
	if err != nil {
		fail("validate", fmt.Errorf("error validating token: %w", err))
	}

	// vault-plugin-auth-jwt validateAudience(strict=true) is covered: audiences are always bound here.
	// bound_claims with bound_claims_type=glob (vault-plugin-auth-jwt claims.go semantics).
	if err := validateBoundClaims(map[string]interface{}{"sub": *subGlob}, claims); err != nil {
		fail("bound_claims", fmt.Errorf("error validating claims: %w", err))
	}
	// user_claim = sub: must be present and a string.
	raw := getClaim(claims, "sub")
	if raw == nil {
		fail("user_claim", errors.New(`claim "sub" not found in token`))
	}
	sub, ok := raw.(string)
	if !ok {
		fail("user_claim", errors.New(`claim "sub" could not be converted to string`))
	}
	r := result{OK: true, Sub: sub, Claims: claims}
	if *role != "" {
		r.Role = *role
		r.User = sub
	}
	emit(r)
}

// getClaim: plain claim names only (no JSON pointer needed for "sub"); numbers normalised
// to json.Number like the plugin does.
func getClaim(all map[string]interface{}, name string) interface{} {
	v := all[name]
	if f, ok := v.(float64); ok {
		if f == float64(int64(f)) {
			return json.Number(strconv.FormatInt(int64(f), 10))
		}
		return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
	}
	return v
}

func toList(raw interface{}) ([]interface{}, bool) {
	switch v := raw.(type) {
	case []interface{}:
		return v, true
	case string, bool, json.Number:
		return []interface{}{v}, true
	}
	return nil, false
}

func validateBoundClaims(bound, all map[string]interface{}) error {
	for name, want := range bound {
		got := getClaim(all, name)
		if got == nil {
			return fmt.Errorf("claim %q is missing", name)
		}
		gotVals, ok := toList(got)
		if !ok {
			return fmt.Errorf("received claim is not a string, bool, int or list: %v", got)
		}
		wantVals, ok := toList(want)
		if !ok {
			return fmt.Errorf("bound claim is not a string, bool, int or list: %v", want)
		}
		found := false
	outer:
		for _, w := range wantVals {
			ws, ok := w.(string)
			if !ok {
				return fmt.Errorf("received claim is not a glob string: %v", w)
			}
			for _, g := range gotVals {
				gs, ok := g.(string)
				if ok && glob.Glob(ws, gs) {
					found = true
					break outer
				}
			}
		}
		if !found {
			return fmt.Errorf("claim %q does not match any associated bound claim values", name)
		}
	}
	return nil
}
