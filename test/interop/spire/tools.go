//go:build tools

// Package tools pins the real SPIRE binaries used as interop peers. scripts/setup-interop.sh builds
// them with `go build -o ~/.cache/ztwim/spire-v1.13.0/bin/ github.com/spiffe/spire/cmd/... \
// github.com/spiffe/spire/support/oidc-discovery-provider` (the provider is in the same module).
package tools

import (
	_ "github.com/spiffe/spire/cmd/spire-agent"
	_ "github.com/spiffe/spire/cmd/spire-server"
	_ "github.com/spiffe/spire/support/oidc-discovery-provider"
)
