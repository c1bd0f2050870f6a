#!/usr/bin/env bash
# Builds kube-apiserver for zoku's Kubernetes tests, once per version: the
# binary goes to <user cache dir>/zoku-kube/<version>/kube-apiserver (where
# internal/testkit/kubetest looks for it) and is never committed. A cold
# build takes about 14 minutes and 3 GB of memory on 2 cores; with Go's
# build cache warm, seconds. Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's|^[[:space:]]*k8s.io/kubernetes \(v[0-9.]*\)$|\1|p' go.mod | head -1)
[ -n "$version" ] || { echo "build.sh: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
out="${ZOKU_KUBE_APISERVER:-${XDG_CACHE_HOME:-$HOME/.cache}/zoku-kube/$version/kube-apiserver}"
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
major=${version#v}; major=${major%%.*}
minor=${version#v*.}; minor=${minor%%.*}
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=$version -X $p.gitMajor=$major -X $p.gitMinor=$minor"
done
go build -trimpath -ldflags "$ld" -o "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
