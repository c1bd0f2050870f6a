// Command kube-apiserver builds the upstream Kubernetes API server from the
// Go module proxy for zoku's Kubernetes tests. It is built once per version
// (see ../build.go and .ci/run) and never committed as a binary.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
