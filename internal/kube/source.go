// Package kube makes a Kubernetes cluster a source of zoku's routes,
// services and certificates: Ingresses of zoku's IngressClass, Gateway API
// Gateways and HTTPRoutes of zoku's GatewayClass, the Services and
// EndpointSlices behind them, and the kubernetes.io/tls Secrets they name.
//
// The Source watches those objects with client-go informers. After a change
// it waits for the burst to settle (Options.Debounce, 200 ms by default,
// never more than Options.MaxDelay after the first change), translates the
// whole cluster state into a config.Dynamic, merges it with the file's
// config (config.Merge) and applies the result through one function, the
// same one a file reload uses, so a change is applied whole or not at all
// and without dropping a request.
//
// An object zoku cannot apply whole (a missing Secret, an unsupported
// HTTPRoute filter, a host that is not a name) is left out and reported:
// in zoku's log, as a Kubernetes Event on the object, and for Gateway API
// objects in their status conditions. It never stops the others.
//
// What zoku writes back: the address it serves on into the status of the
// Ingresses it serves; the Accepted condition of its GatewayClasses;
// Accepted and Programmed (and per listener Accepted, Programmed,
// ResolvedRefs, Conflicted, attachedRoutes) of Gateways; Accepted and
// ResolvedRefs of HTTPRoutes, for zoku's parents only.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/kubeclient"
)

// Options configure New.
type Options struct {
	// Config is the kubernetes section of the file; required.
	Config *config.Kubernetes
	// REST reaches the API server; nil builds it from Config
	// (RESTConfig).
	REST *rest.Config
	// Apply puts a merged config in service; an error means it was
	// refused and the previous one still serves. Required.
	Apply func(*config.Config) error
	// Logger; nil discards.
	Logger *slog.Logger
	// Debounce is how long changes must settle before they are applied;
	// zero means 200 ms. MaxDelay bounds the wait after the first change
	// of a burst; zero means 500 ms.
	Debounce, MaxDelay time.Duration
	// SyncTimeout bounds the first listing of the cluster at Start; zero
	// means 30 s.
	SyncTimeout time.Duration
}

// Source follows a cluster and applies what it derives. Create it with
// New, start it with Start, stop it with Close.
type Source struct {
	o       Options
	log     *slog.Logger
	client  *kubeclient.Client
	gw      bool // the Gateway API is installed (known after Start)
	sel     labels.Selector
	listers listers
	kick    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	// reports carries the latest translation to the reporter, which
	// writes statuses and Events off the apply path (an API server that
	// is slow or down never holds up a reload).
	reports chan report

	// mu serialises building and applying; the fields below are guarded
	// by it.
	mu      sync.Mutex
	file    *config.Config  // the file's config in service, nil before ApplyFile
	applied *config.Dynamic // the dynamic part in service

	reported map[string]bool // problem lines already reported; the reporter's
}

// report is a translation to report on, with the file's config it was
// merged with.
type report struct {
	res  *result
	file *config.Config
}

// New checks o and builds the clients; it does no network I/O.
func New(o Options) (*Source, error) {
	if o.Config == nil || o.Apply == nil {
		return nil, errors.New("kubernetes: Options.Config and Options.Apply are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Debounce <= 0 {
		o.Debounce = 200 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 500 * time.Millisecond
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 30 * time.Second
	}
	sel, err := labels.Parse(o.Config.LabelSelector)
	if err != nil {
		return nil, fmt.Errorf("config: kubernetes.labelSelector %q: %w; write e.g. app=web,env!=test", o.Config.LabelSelector, err)
	}
	if o.REST == nil {
		if o.REST, err = RESTConfig(o.Config.Kubeconfig, o.Config.Context); err != nil {
			return nil, err
		}
	}
	rc := rest.CopyConfig(o.REST)
	rc.UserAgent = "zoku"
	cs, err := kubeclient.New(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	// client-go logs through klog: into zoku's log, not onto stderr.
	klog.SetSlogLogger(o.Logger.With("component", "kubernetes"))
	return &Source{o: o, log: o.Logger.With("component", "kubernetes"), client: cs, sel: sel, kick: make(chan struct{}, 1), reported: map[string]bool{}, reports: make(chan report, 1)}, nil
}

// listers read the informers' caches, one per watched namespace (or one
// for all).
type listers struct {
	ingressClasses []cache.Store
	ingresses      []cache.Store
	services       []cache.Store
	slices         []cache.Store
	secrets        []cache.Store
	gatewayClasses []cache.Store
	gateways       []cache.Store
	httpRoutes     []cache.Store
}

// Start lists and watches the cluster, waits until the caches are filled
// (bounded by Options.SyncTimeout), and then follows changes until Close.
// It applies nothing before the first ApplyFile.
func (s *Source) Start(ctx context.Context) error {
	k := s.o.Config
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hasGateway, err := s.gatewayInstalled(ctx)
	if err != nil {
		cancel()
		return err
	}
	s.gw = hasGateway
	if !hasGateway {
		s.log.Info("the Gateway API is not installed in the cluster; serving Ingresses only (restart zoku after installing it)")
	}
	namespaces := k.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{corev1.NamespaceAll}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.Changed() },
		UpdateFunc: func(any, any) { s.Changed() },
		DeleteFunc: func(any) { s.Changed() },
	}
	var informers []cache.SharedIndexInformer
	var synced []cache.InformerSynced
	add := func(inf cache.SharedIndexInformer, to *[]cache.Store) {
		_, _ = inf.AddEventHandler(handler)
		informers = append(informers, inf)
		synced = append(synced, inf.HasSynced)
		*to = append(*to, inf.GetStore())
	}
	labelled := func(o *metav1.ListOptions) { o.LabelSelector = k.LabelSelector }
	tlsOnly := func(o *metav1.ListOptions) { o.FieldSelector = "type=" + string(corev1.SecretTypeTLS) }
	add(kubeclient.Informer(s.client.IngressClasses(), nil), &s.listers.ingressClasses)
	if s.gw {
		add(kubeclient.Informer(s.client.GatewayClasses(), nil), &s.listers.gatewayClasses)
	}
	for _, ns := range namespaces {
		add(kubeclient.Informer(s.client.Services(ns), nil), &s.listers.services)
		add(kubeclient.Informer(s.client.EndpointSlices(ns), nil), &s.listers.slices)
		add(kubeclient.Informer(s.client.Ingresses(ns), labelled), &s.listers.ingresses)
		add(kubeclient.Informer(s.client.Secrets(ns), tlsOnly), &s.listers.secrets)
		if s.gw {
			add(kubeclient.Informer(s.client.Gateways(ns), labelled), &s.listers.gateways)
			add(kubeclient.Informer(s.client.HTTPRoutes(ns), labelled), &s.listers.httpRoutes)
		}
	}
	for _, inf := range informers {
		go inf.RunWithContext(rctx)
	}
	sctx, scancel := context.WithTimeout(ctx, s.o.SyncTimeout)
	defer scancel()
	if !cache.WaitForCacheSync(sctx.Done(), synced...) {
		cancel()
		return fmt.Errorf("kubernetes: could not list the cluster's objects at %s within %s; check kubernetes.kubeconfig, that the API server answers, and zoku's RBAC rights (deploy/kubernetes/rbac.yaml)", s.o.REST.Host, s.o.SyncTimeout)
	}
	s.cancel, s.done = cancel, make(chan struct{})
	reporterDone := make(chan struct{})
	go s.reporter(rctx, reporterDone)
	go func() {
		s.loop(rctx)
		<-reporterDone
		close(s.done)
	}()
	return nil
}

// gatewayInstalled asks the API server whether it serves
// gateway.networking.k8s.io/v1.
func (s *Source) gatewayInstalled(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.SyncTimeout)
	defer cancel()
	res, err := s.client.ServerResources(ctx, kubeclient.GatewayGroupVersion.String())
	if err != nil && ctx.Err() != nil {
		return false, fmt.Errorf("kubernetes: the API server at %s does not answer; check kubernetes.kubeconfig and the network", s.o.REST.Host)
	}
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("kubernetes: cannot reach the API server at %s: %w; check kubernetes.kubeconfig, the credentials and the network", s.o.REST.Host, err)
	}
	for _, r := range res.APIResources {
		if r.Name == "httproutes" {
			return true, nil
		}
	}
	return false, nil
}

// Changed asks for the cluster's state to be translated and applied again
// (informers call it on every event).
func (s *Source) Changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// loop applies changes once they settle.
func (s *Source) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		first := time.Now()
		quiet := time.NewTimer(s.o.Debounce)
	settle:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				return
			case <-s.kick:
				if time.Since(first) < s.o.MaxDelay-s.o.Debounce {
					quiet.Reset(s.o.Debounce)
				}
			case <-quiet.C:
				break settle
			}
		}
		if err := s.reapply(ctx); err != nil {
			s.log.Error("cluster change not applied; the previous configuration keeps serving", "error", err)
		}
	}
}

// reapply merges the cluster's state with the file's config in service
// and applies it when it changed.
func (s *Source) reapply(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	return s.applyLocked(ctx, s.file, false)
}

// ApplyFile applies a config of the file merged with the cluster's
// state; `zoku run` uses it for its first apply and every file reload.
func (s *Source) ApplyFile(ctx context.Context, file *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(ctx, file, true)
}

func (s *Source) applyLocked(ctx context.Context, file *config.Config, force bool) error {
	res := translate(s.snapshot(), settingsOf(file))
	if !force && file == s.file && reflect.DeepEqual(res.dyn, s.applied) {
		s.toReporter(report{res: res, file: file}) // statuses may still lag (a write failed)
		return nil
	}
	merged, problems, err := config.Merge(file, res.dyn)
	for _, p := range problems {
		owner := p.Owner
		if owner == "" {
			owner = p.Key
		}
		res.problems[owner] = append(res.problems[owner], p.Key+": "+p.Reason)
	}
	if err != nil {
		res.ingresses, res.classStatus, res.gatewayStatus, res.routeStatus = nil, nil, nil, nil
		s.toReporter(report{res: res, file: file})
		return err
	}
	if err := s.o.Apply(merged); err != nil {
		return err
	}
	s.file, s.applied = file, res.dyn
	s.log.Debug("cluster state applied", "routes", len(res.dyn.Routes), "services", len(res.dyn.Services),
		"certificates", len(res.dyn.Certificates), "domains", len(res.dyn.Domains))
	s.toReporter(report{res: res, file: file})
	return nil
}

// toReporter hands r to the reporter, replacing one it has not taken
// yet.
func (s *Source) toReporter(r report) {
	for {
		select {
		case s.reports <- r:
			return
		default:
		}
		select {
		case <-s.reports:
		default:
		}
	}
}

// reporter writes statuses and reports problems of the latest
// translation.
func (s *Source) reporter(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.reports:
			s.report(ctx, r.res.snap, r.res.problems)
			s.writeStatus(ctx, r.res, r.file)
		}
	}
}

// settingsOf takes what translate needs from the file's config.
func settingsOf(c *config.Config) settings {
	set := settings{}
	if k := c.Kubernetes; k != nil {
		set.ingressClass, set.controller = k.IngressClass, k.GatewayController
	}
	if set.ingressClass == "" {
		set.ingressClass = config.DefaultIngressClass
	}
	if set.controller == "" {
		set.controller = config.DefaultGatewayController
	}
	for n, ep := range c.EntryPoints {
		if ep != nil {
			set.entryPoints = append(set.entryPoints, entryPoint{name: n, port: ep.Port(), tls: ep.TLS != nil && ep.Redirect == nil})
		}
	}
	// Entry points that redirect serve no route.
	out := set.entryPoints[:0]
	for _, ep := range set.entryPoints {
		if c.EntryPoints[ep.name].Redirect == nil {
			out = append(out, ep)
		}
	}
	set.entryPoints = out
	sort.Slice(set.entryPoints, func(i, j int) bool { return set.entryPoints[i].name < set.entryPoints[j].name })
	return set
}

// snapshot copies the caches' object pointers, sorted by namespace and
// name so a translation is stable.
func (s *Source) snapshot() *snapshot {
	snap := &snapshot{services: map[string]*corev1.Service{}, slices: map[string][]*discoveryv1.EndpointSlice{}, secrets: map[string]*corev1.Secret{}}
	each := func(stores []cache.Store, f func(any)) {
		for _, st := range stores {
			for _, o := range st.List() {
				f(o)
			}
		}
	}
	each(s.listers.ingressClasses, func(o any) { snap.ingressClasses = append(snap.ingressClasses, o.(*networkingv1.IngressClass)) })
	each(s.listers.ingresses, func(o any) { snap.ingresses = append(snap.ingresses, o.(*networkingv1.Ingress)) })
	each(s.listers.services, func(o any) { v := o.(*corev1.Service); snap.services[v.Namespace+"/"+v.Name] = v })
	each(s.listers.secrets, func(o any) { v := o.(*corev1.Secret); snap.secrets[v.Namespace+"/"+v.Name] = v })
	each(s.listers.slices, func(o any) {
		v := o.(*discoveryv1.EndpointSlice)
		if svc := v.Labels[discoveryv1.LabelServiceName]; svc != "" {
			snap.slices[v.Namespace+"/"+svc] = append(snap.slices[v.Namespace+"/"+svc], v)
		}
	})
	each(s.listers.gatewayClasses, func(o any) { snap.gatewayClasses = append(snap.gatewayClasses, o.(*gwv1.GatewayClass)) })
	each(s.listers.gateways, func(o any) { snap.gateways = append(snap.gateways, o.(*gwv1.Gateway)) })
	each(s.listers.httpRoutes, func(o any) { snap.httpRoutes = append(snap.httpRoutes, o.(*gwv1.HTTPRoute)) })
	sortObjects(snap)
	return snap
}

// Close stops watching; it does not change what is in service.
func (s *Source) Close() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// sortObjects orders the lists by namespace and name.
func sortObjects(snap *snapshot) {
	byKey := func(a, b metav1.Object) bool {
		if a.GetNamespace() != b.GetNamespace() {
			return a.GetNamespace() < b.GetNamespace()
		}
		return a.GetName() < b.GetName()
	}
	sort.Slice(snap.ingressClasses, func(i, j int) bool { return byKey(snap.ingressClasses[i], snap.ingressClasses[j]) })
	sort.Slice(snap.ingresses, func(i, j int) bool { return byKey(snap.ingresses[i], snap.ingresses[j]) })
	sort.Slice(snap.gatewayClasses, func(i, j int) bool { return byKey(snap.gatewayClasses[i], snap.gatewayClasses[j]) })
	sort.Slice(snap.gateways, func(i, j int) bool { return byKey(snap.gateways[i], snap.gateways[j]) })
	sort.Slice(snap.httpRoutes, func(i, j int) bool { return byKey(snap.httpRoutes[i], snap.httpRoutes[j]) })
	for k, l := range snap.slices {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
		snap.slices[k] = l
	}
}
