// gotemplate runs Go's text/template as spire-controller-manager does (default options, data
// shaped like its templateData) on JSON-lines cases from stdin, one JSON-line answer each:
// {"parse_error":bool,"exec_error":bool,"out":string,"error":string}. The registrar's evaluator
// is compared with it (test/interop/registrar-template-vs-go.test.ts).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"text/template"
)

type ObjectMeta struct {
	Name        string
	Namespace   string
	UID         string
	Generation  int64
	Labels      map[string]string
	Annotations map[string]string
}

type Container struct {
	Name  string
	Image string
}

type PodSpec struct {
	ServiceAccountName string
	NodeName           string
	HostNetwork        bool
	Priority           *int32
	RuntimeClassName   *string
	Containers         []Container
}

type NodeSpec struct {
	PodCIDR    string
	ProviderID string
}

type templateData struct {
	TrustDomain   string
	ClusterName   string
	ClusterDomain string
	PodMeta       *ObjectMeta
	PodSpec       *PodSpec
	NodeMeta      *ObjectMeta
	NodeSpec      *NodeSpec
}

type input struct {
	Template string       `json:"template"`
	Data     templateData `json:"data"`
}

type output struct {
	ParseError bool   `json:"parse_error"`
	ExecError  bool   `json:"exec_error"`
	Out        string `json:"out"`
	Error      string `json:"error"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c input
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			panic(err)
		}
		var o output
		t, err := template.New("spiffeIDTemplate").Parse(c.Template)
		if err != nil {
			o.ParseError, o.Error = true, err.Error()
		} else {
			var buf bytes.Buffer
			if err := t.Execute(&buf, &c.Data); err != nil {
				o.ExecError, o.Error = true, err.Error()
			} else {
				o.Out = buf.String()
			}
		}
		if err := enc.Encode(o); err != nil {
			panic(err)
		}
	}
}
