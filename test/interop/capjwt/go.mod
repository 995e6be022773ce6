module ztwim/capjwt

go 1.24.0

require (
	github.com/hashicorp/cap v0.13.0
	github.com/ryanuber/go-glob v1.0.0
)

require (
	github.com/coreos/go-oidc/v3 v3.11.0 // indirect
	github.com/go-jose/go-jose/v3 v3.0.5 // indirect
	github.com/go-jose/go-jose/v4 v4.0.5 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	golang.org/x/crypto v0.45.0 // indirect
	golang.org/x/oauth2 v0.27.0 // indirect
)
