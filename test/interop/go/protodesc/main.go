// Command protodesc prints, as JSON, the shape of every message, enum and service that
// the reference Go bindings register (spire-api-sdk, go-spiffe's Workload API, grpc
// health, SPIRE's spire.common) so the interop test can compare ours field by field.
package main

import (
	"encoding/json"
	"os"
	"strings"

	_ "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	_ "github.com/spiffe/spire-api-sdk/proto/spire/api/server/agent/v1"
	_ "github.com/spiffe/spire-api-sdk/proto/spire/api/server/bundle/v1"
	_ "github.com/spiffe/spire-api-sdk/proto/spire/api/server/debug/v1"
	_ "github.com/spiffe/spire-api-sdk/proto/spire/api/server/entry/v1"
	_ "github.com/spiffe/spire-api-sdk/proto/spire/api/server/localauthority/v1"
	_ "github.com/spiffe/spire-api-sdk/proto/spire/api/server/svid/v1"
	_ "github.com/spiffe/spire-api-sdk/proto/spire/api/server/trustdomain/v1"
	_ "github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	_ "github.com/spiffe/spire/proto/spire/common"
	_ "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

type field struct {
	Name     string `json:"name"`
	Number   int32  `json:"number"`
	Kind     string `json:"kind"`
	Repeated bool   `json:"repeated"`
	Map      bool   `json:"map"`
	TypeName string `json:"typeName"`
	Oneof    string `json:"oneof"`
}

type method struct {
	Name            string `json:"name"`
	Input           string `json:"input"`
	Output          string `json:"output"`
	ClientStreaming bool   `json:"clientStreaming"`
	ServerStreaming bool   `json:"serverStreaming"`
}

type dump struct {
	Messages map[string][]field          `json:"messages"`
	Enums    map[string]map[string]int32 `json:"enums"`
	Services map[string][]method         `json:"services"`
}

func wanted(fd protoreflect.FileDescriptor) bool {
	p := string(fd.Package())
	return p == "" && strings.Contains(fd.Path(), "workload") ||
		strings.HasPrefix(p, "spire.api.") || p == "spire.common" || p == "grpc.health.v1"
}

func main() {
	d := dump{Messages: map[string][]field{}, Enums: map[string]map[string]int32{}, Services: map[string][]method{}}
	var addEnum func(e protoreflect.EnumDescriptor)
	addEnum = func(e protoreflect.EnumDescriptor) {
		vals := map[string]int32{}
		for i := 0; i < e.Values().Len(); i++ {
			v := e.Values().Get(i)
			vals[string(v.Name())] = int32(v.Number())
		}
		d.Enums[string(e.FullName())] = vals
	}
	var addMsg func(m protoreflect.MessageDescriptor)
	addMsg = func(m protoreflect.MessageDescriptor) {
		if m.IsMapEntry() {
			return
		}
		fs := []field{}
		for i := 0; i < m.Fields().Len(); i++ {
			f := m.Fields().Get(i)
			x := field{Name: string(f.Name()), Number: int32(f.Number()), Kind: f.Kind().String(), Repeated: f.IsList(), Map: f.IsMap()}
			if f.IsMap() {
				x.Kind = f.MapKey().Kind().String() + "->" + f.MapValue().Kind().String()
			} else if f.Message() != nil {
				x.TypeName = string(f.Message().FullName())
			} else if f.Enum() != nil {
				x.TypeName = string(f.Enum().FullName())
			}
			if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
				x.Oneof = string(o.Name())
			}
			fs = append(fs, x)
		}
		d.Messages[string(m.FullName())] = fs
		for i := 0; i < m.Messages().Len(); i++ {
			addMsg(m.Messages().Get(i))
		}
		for i := 0; i < m.Enums().Len(); i++ {
			addEnum(m.Enums().Get(i))
		}
	}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !wanted(fd) {
			return true
		}
		for i := 0; i < fd.Messages().Len(); i++ {
			addMsg(fd.Messages().Get(i))
		}
		for i := 0; i < fd.Enums().Len(); i++ {
			addEnum(fd.Enums().Get(i))
		}
		for i := 0; i < fd.Services().Len(); i++ {
			s := fd.Services().Get(i)
			ms := []method{}
			for j := 0; j < s.Methods().Len(); j++ {
				m := s.Methods().Get(j)
				ms = append(ms, method{string(m.Name()), string(m.Input().FullName()), string(m.Output().FullName()), m.IsStreamingClient(), m.IsStreamingServer()})
			}
			d.Services[string(s.FullName())] = ms
		}
		return true
	})
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(d); err != nil {
		os.Exit(1)
	}
}
