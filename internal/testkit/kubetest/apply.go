package kubetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// Apply applies every object of a multi-document YAML (or JSON) stream
// server-side, as `kubectl apply --server-side` does, and returns them.
// Objects without a namespace of a namespaced kind go to namespace (when
// not empty).
func (c *Cluster) Apply(ctx context.Context, manifest []byte, namespace string) ([]*unstructured.Unstructured, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("decode manifest: %w", err)
		}
		if len(raw) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: raw}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = namespace
				obj.SetNamespace(ns)
			}
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		body, err := json.Marshal(obj)
		if err != nil {
			return out, err
		}
		force := true
		applied, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "kubetest", Force: &force})
		if err != nil {
			return out, fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		out = append(out, applied)
	}
}

// InstallGatewayAPI applies the standard Gateway API CRDs of the
// sigs.k8s.io/gateway-api module zoku builds with, and waits until the
// API server serves HTTPRoutes.
func (c *Cluster) InstallGatewayAPI(t testing.TB) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("kubetest: find the gateway-api module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("kubetest: no CRDs in %s: %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Apply(ctx, b, ""); err != nil {
			t.Fatalf("kubetest: apply %s: %v", filepath.Base(f), err)
		}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if res, err := dc.ServerResourcesForGroupVersion("gateway.networking.k8s.io/v1"); err == nil {
			n := 0
			for _, r := range res.APIResources {
				if r.Name == "httproutes" || r.Name == "gateways" || r.Name == "gatewayclasses" {
					n++
				}
			}
			if n == 3 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("kubetest: the Gateway API CRDs were not served within 90 s")
		case <-time.After(200 * time.Millisecond):
		}
	}
}
