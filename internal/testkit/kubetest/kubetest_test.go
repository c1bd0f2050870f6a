package kubetest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestVersionMatchesModule keeps Version (the binary's folder) in step
// with the version apiserver/go.mod builds.
func TestVersionMatchesModule(t *testing.T) {
	b, err := os.ReadFile("apiserver/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if want := "\tk8s.io/kubernetes " + Version + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("apiserver/go.mod does not contain %q: update Version or the module", want)
	}
}

// TestStartRestart starts the API server, lists through it, restarts it
// and lists again.
func TestStartRestart(t *testing.T) {
	c := Start(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil || v.GitVersion != Version {
		t.Errorf("server version %v, %v; want %s", v, err, Version)
	}
	c.StopAPIServer()
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Fatal("the API server still answers after StopAPIServer")
	}
	if err := c.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
