// Package kubeclient is zoku's Kubernetes API client: typed clients and
// informers for the few kinds zoku reads and writes, on a scheme that
// holds only those kinds.
//
// client-go's clientset and informer factories (and the Gateway API's,
// built the same way) register every API group of Kubernetes in one
// scheme, which links dozens of API packages into the binary and builds
// their type tables at every start. zoku needs these kinds:
//
//   - core/v1: Secret, Service, Event
//   - networking.k8s.io/v1: Ingress, IngressClass
//   - discovery.k8s.io/v1: EndpointSlice
//   - coordination.k8s.io/v1: Lease
//   - gateway.networking.k8s.io/v1: GatewayClass, Gateway, HTTPRoute
//
// The typed clients (Resource) send what client-go's generated clients
// send: the same paths and query parameters, Protobuf for Kubernetes' own
// kinds and JSON for the Gateway API's, through one HTTP client and one
// client-side rate limiter. They are written here rather than taken from
// client-go's gentype, which links client-go's fake-client machinery
// (JSON patch, structured merge, OpenAPI models) into every binary that
// uses it.
package kubeclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayGroupVersion is the Gateway API version zoku serves.
var GatewayGroupVersion = schema.GroupVersion{Group: gwv1.GroupName, Version: "v1"}

// codecs encode and decode zoku's kinds, on a scheme of those only;
// built on first use, so a zoku without Kubernetes never builds them.
type codecs struct {
	serializer runtime.NegotiatedSerializer
	params     runtime.ParameterCodec
}

var theCodecs = sync.OnceValue(func() *codecs {
	s := runtime.NewScheme()
	// Status, WatchEvent, APIResourceList and the option types of
	// requests, as every client-go scheme has them.
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	add := func(gv schema.GroupVersion, kinds ...runtime.Object) {
		s.AddKnownTypes(gv, kinds...)
		metav1.AddToGroupVersion(s, gv)
	}
	add(corev1.SchemeGroupVersion,
		&corev1.Secret{}, &corev1.SecretList{},
		&corev1.Service{}, &corev1.ServiceList{},
		&corev1.Event{}, &corev1.EventList{})
	add(networkingv1.SchemeGroupVersion,
		&networkingv1.Ingress{}, &networkingv1.IngressList{},
		&networkingv1.IngressClass{}, &networkingv1.IngressClassList{})
	add(discoveryv1.SchemeGroupVersion, &discoveryv1.EndpointSlice{}, &discoveryv1.EndpointSliceList{})
	add(coordinationv1.SchemeGroupVersion, &coordinationv1.Lease{}, &coordinationv1.LeaseList{})
	add(GatewayGroupVersion,
		&gwv1.GatewayClass{}, &gwv1.GatewayClassList{},
		&gwv1.Gateway{}, &gwv1.GatewayList{},
		&gwv1.HTTPRoute{}, &gwv1.HTTPRouteList{})
	return &codecs{
		serializer: serializer.NewCodecFactory(s).WithoutConversion(),
		params:     runtime.NewParameterCodec(s),
	}
})

// Client reaches one API server. It is safe for concurrent use; its
// methods do no I/O until a request of the returned client is made.
type Client struct {
	core, networking, discovery, coordination, gateway rest.Interface
	params                                             runtime.ParameterCodec
}

// New builds a Client from cfg, which it does not change. As client-go's
// clientset, it sets client-go's user agent when cfg names none, and all
// API groups share one HTTP client and, when cfg.QPS is set and
// cfg.RateLimiter is not, one rate limiter of cfg.QPS and cfg.Burst.
func New(cfg *rest.Config) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("kubernetes client: no REST config")
	}
	c := *cfg
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if c.RateLimiter == nil && c.QPS > 0 {
		if c.Burst <= 0 {
			return nil, fmt.Errorf("kubernetes client: burst must be above 0 when QPS is set (QPS %v, burst %d)", c.QPS, c.Burst)
		}
		c.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(c.QPS, c.Burst)
	}
	hc, err := rest.HTTPClientFor(&c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: HTTP client for %s: %w", c.Host, err)
	}
	cd := theCodecs()
	group := func(apiPath string, gv schema.GroupVersion) (rest.Interface, error) {
		gc := c
		gc.APIPath, gc.GroupVersion, gc.NegotiatedSerializer = apiPath, &gv, cd.serializer
		rc, err := rest.RESTClientForConfigAndClient(&gc, hc)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client: %s client for %s: %w", gv, c.Host, err)
		}
		return rc, nil
	}
	out := &Client{params: cd.params}
	for _, g := range []struct {
		to      *rest.Interface
		apiPath string
		gv      schema.GroupVersion
	}{
		{&out.core, "/api", corev1.SchemeGroupVersion},
		{&out.networking, "/apis", networkingv1.SchemeGroupVersion},
		{&out.discovery, "/apis", discoveryv1.SchemeGroupVersion},
		{&out.coordination, "/apis", coordinationv1.SchemeGroupVersion},
		{&out.gateway, "/apis", GatewayGroupVersion},
	} {
		if *g.to, err = group(g.apiPath, g.gv); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Object is what every object of the API is.
type Object interface {
	runtime.Object
	metav1.Object
}

// Resource is a typed client of one kind: its objects in one namespace,
// or in all namespaces (or of a cluster-scoped kind) when the namespace
// is "". Its requests are those of client-go's generated clients.
type Resource[T Object, L runtime.Object] struct {
	rc                  rest.Interface
	params              runtime.ParameterCodec
	resource, namespace string
	protobuf            bool // Kubernetes' own kinds; CRDs speak JSON only
	newObject           func() T
	newList             func() L
}

// resource returns the client of the objects of kind E (list kind LE),
// named resource in URLs, in namespace.
func resource[E, LE any, T interface {
	*E
	Object
}, L interface {
	*LE
	runtime.Object
}](c *Client, rc rest.Interface, resource, namespace string, protobuf bool) *Resource[T, L] {
	return &Resource[T, L]{rc: rc, params: c.params, resource: resource, namespace: namespace, protobuf: protobuf,
		newObject: func() T { return T(new(E)) }, newList: func() L { return L(new(LE)) }}
}

// request starts a request of verb on r's objects.
func (r *Resource[T, L]) request(verb *rest.Request) *rest.Request {
	return verb.UseProtobufAsDefaultIfPreferred(r.protobuf).NamespaceIfScoped(r.namespace, r.namespace != "").Resource(r.resource)
}

// timeout is the client-side timeout of a list or watch: the one it asks
// the server for, if any.
func timeout(o *metav1.ListOptions) time.Duration {
	if o.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*o.TimeoutSeconds) * time.Second
}

// Get reads the object named name.
func (r *Resource[T, L]) Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error) {
	out := r.newObject()
	err := r.request(r.rc.Get()).Name(name).VersionedParams(&opts, r.params).Do(ctx).Into(out)
	return out, err
}

// List reads the objects that opts select.
func (r *Resource[T, L]) List(ctx context.Context, opts metav1.ListOptions) (L, error) {
	out := r.newList()
	err := r.request(r.rc.Get()).VersionedParams(&opts, r.params).Timeout(timeout(&opts)).Do(ctx).Into(out)
	return out, err
}

// Watch follows the changes of the objects that opts select.
func (r *Resource[T, L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return r.request(r.rc.Get()).VersionedParams(&opts, r.params).Timeout(timeout(&opts)).Watch(ctx)
}

// Create creates obj and returns it as stored.
func (r *Resource[T, L]) Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error) {
	out := r.newObject()
	err := r.request(r.rc.Post()).VersionedParams(&opts, r.params).Body(obj).Do(ctx).Into(out)
	return out, err
}

// Update replaces obj (all but its status), with its resourceVersion as
// precondition when it has one, and returns it as stored.
func (r *Resource[T, L]) Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error) {
	out := r.newObject()
	err := r.request(r.rc.Put()).Name(obj.GetName()).VersionedParams(&opts, r.params).Body(obj).Do(ctx).Into(out)
	return out, err
}

// UpdateStatus replaces the status of obj, with its resourceVersion as
// precondition when it has one, and returns it as stored.
func (r *Resource[T, L]) UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error) {
	out := r.newObject()
	err := r.request(r.rc.Put()).Name(obj.GetName()).SubResource("status").VersionedParams(&opts, r.params).Body(obj).Do(ctx).Into(out)
	return out, err
}

// Delete deletes the object named name.
func (r *Resource[T, L]) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return r.request(r.rc.Delete()).Name(name).Body(&opts).Do(ctx).Error()
}

// Secrets is the client of the Secrets of namespace (all namespaces when
// it is empty).
func (c *Client) Secrets(namespace string) *Resource[*corev1.Secret, *corev1.SecretList] {
	return resource[corev1.Secret, corev1.SecretList](c, c.core, "secrets", namespace, true)
}

// Services is the client of the Services of namespace (all namespaces
// when it is empty).
func (c *Client) Services(namespace string) *Resource[*corev1.Service, *corev1.ServiceList] {
	return resource[corev1.Service, corev1.ServiceList](c, c.core, "services", namespace, true)
}

// Events is the client of the core/v1 Events of namespace (all
// namespaces when it is empty).
func (c *Client) Events(namespace string) *Resource[*corev1.Event, *corev1.EventList] {
	return resource[corev1.Event, corev1.EventList](c, c.core, "events", namespace, true)
}

// Ingresses is the client of the Ingresses of namespace (all namespaces
// when it is empty).
func (c *Client) Ingresses(namespace string) *Resource[*networkingv1.Ingress, *networkingv1.IngressList] {
	return resource[networkingv1.Ingress, networkingv1.IngressList](c, c.networking, "ingresses", namespace, true)
}

// IngressClasses is the client of the cluster's IngressClasses.
func (c *Client) IngressClasses() *Resource[*networkingv1.IngressClass, *networkingv1.IngressClassList] {
	return resource[networkingv1.IngressClass, networkingv1.IngressClassList](c, c.networking, "ingressclasses", "", true)
}

// EndpointSlices is the client of the EndpointSlices of namespace (all
// namespaces when it is empty).
func (c *Client) EndpointSlices(namespace string) *Resource[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList] {
	return resource[discoveryv1.EndpointSlice, discoveryv1.EndpointSliceList](c, c.discovery, "endpointslices", namespace, true)
}

// Leases is the client of the coordination.k8s.io Leases of namespace
// (all namespaces when it is empty).
func (c *Client) Leases(namespace string) *Resource[*coordinationv1.Lease, *coordinationv1.LeaseList] {
	return resource[coordinationv1.Lease, coordinationv1.LeaseList](c, c.coordination, "leases", namespace, true)
}

// GatewayClasses is the client of the cluster's Gateway API
// GatewayClasses.
func (c *Client) GatewayClasses() *Resource[*gwv1.GatewayClass, *gwv1.GatewayClassList] {
	return resource[gwv1.GatewayClass, gwv1.GatewayClassList](c, c.gateway, "gatewayclasses", "", false)
}

// Gateways is the client of the Gateway API Gateways of namespace (all
// namespaces when it is empty).
func (c *Client) Gateways(namespace string) *Resource[*gwv1.Gateway, *gwv1.GatewayList] {
	return resource[gwv1.Gateway, gwv1.GatewayList](c, c.gateway, "gateways", namespace, false)
}

// HTTPRoutes is the client of the Gateway API HTTPRoutes of namespace
// (all namespaces when it is empty).
func (c *Client) HTTPRoutes(namespace string) *Resource[*gwv1.HTTPRoute, *gwv1.HTTPRouteList] {
	return resource[gwv1.HTTPRoute, gwv1.HTTPRouteList](c, c.gateway, "httproutes", namespace, false)
}

// ServerResources returns the resources the API server serves in
// groupVersion ("group/version"), as discovery's
// ServerResourcesForGroupVersion does; an API server that does not
// serve it answers with a NotFound error (apierrors.IsNotFound).
func (c *Client) ServerResources(ctx context.Context, groupVersion string) (*metav1.APIResourceList, error) {
	if groupVersion == "" {
		return nil, errors.New("kubernetes client: ServerResources needs a group version")
	}
	res := &metav1.APIResourceList{GroupVersion: groupVersion}
	if err := c.core.Get().AbsPath("/apis", groupVersion).Do(ctx).Into(res); err != nil {
		return nil, err
	}
	return res, nil
}

// Informer returns an informer (not started) of the objects that r
// lists and watches, with no resync and no index. tweak, when not nil,
// changes the options of every list and watch (a label or field
// selector).
func Informer[T Object, L runtime.Object](r *Resource[T, L], tweak func(*metav1.ListOptions)) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if tweak != nil {
				tweak(&o)
			}
			return r.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if tweak != nil {
				tweak(&o)
			}
			return r.Watch(ctx, o)
		},
	}
	return cache.NewSharedIndexInformer(lw, r.newObject(), 0, cache.Indexers{})
}
