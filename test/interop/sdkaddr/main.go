// sdkaddr: go-spiffe v2.9.0's verdict on Workload API addresses, the oracle for
// test/interop/sdk-address.test.ts. Reads a JSON array of strings on stdin and writes a JSON
// array of {"target": "...", "err": "..."} (err empty when accepted).
package main

import (
	"encoding/json"
	"os"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

type verdict struct {
	Target string `json:"target"`
	Err    string `json:"err"`
}

func main() {
	var addrs []string
	if err := json.NewDecoder(os.Stdin).Decode(&addrs); err != nil {
		panic(err)
	}
	out := make([]verdict, 0, len(addrs))
	for _, a := range addrs {
		t, err := workloadapi.TargetFromAddress(a)
		v := verdict{Target: t}
		if err != nil {
			v.Err = err.Error()
		}
		out = append(out, v)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
