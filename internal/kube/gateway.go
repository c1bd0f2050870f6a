package kube

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/zoku/zoku/internal/config"
)

// listenerState is one Gateway listener as zoku serves it.
type listenerState struct {
	l           gwv1.Listener
	entryPoints []string
	tls         bool
	acme        bool // HTTPS without certificateRefs: ACME for its routes' hosts
	fromAll     bool
	// the listener's conditions: ok is Accepted and ResolvedRefs.
	accepted, resolved       bool
	reason, resolvedReason   string
	message, resolvedMessage string
	attached                 int32
}

type gatewayState struct {
	gw        *gwv1.Gateway
	listeners []*listenerState
}

// condition makes a metav1.Condition of gen.
func condition(t string, ok bool, reason, msg string, gen int64) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
}

func (b *builder) gatewayAPI() {
	classes := map[string]bool{}
	for _, gc := range b.snap.gatewayClasses {
		if string(gc.Spec.ControllerName) != b.set.controller {
			continue
		}
		classes[gc.Name] = true
		c := gc.DeepCopy()
		meta.SetStatusCondition(&c.Status.Conditions, condition(string(gwv1.GatewayClassConditionStatusAccepted), true,
			string(gwv1.GatewayClassReasonAccepted), "zoku serves Gateways of this class", gc.Generation))
		b.res.classStatus = append(b.res.classStatus, c)
	}
	gws := map[string]*gatewayState{}
	var order []string
	for _, gw := range b.snap.gateways {
		if !classes[string(gw.Spec.GatewayClassName)] {
			continue
		}
		key := gw.Namespace + "/" + gw.Name
		gs := &gatewayState{gw: gw}
		for _, l := range gw.Spec.Listeners {
			gs.listeners = append(gs.listeners, b.listener(gw, l))
		}
		gws[key] = gs
		order = append(order, key)
	}
	for _, hr := range b.snap.httpRoutes {
		b.httpRoute(hr, gws)
	}
	sort.Strings(order)
	for _, key := range order {
		b.res.gatewayStatus = append(b.res.gatewayStatus, gatewayStatus(gws[key]))
	}
}

// listener checks one listener and pins its certificates.
func (b *builder) listener(gw *gwv1.Gateway, l gwv1.Listener) *listenerState {
	ls := &listenerState{l: l, accepted: true, resolved: true,
		reason: string(gwv1.ListenerReasonAccepted), resolvedReason: string(gwv1.ListenerReasonResolvedRefs)}
	owner := "gateway " + gw.Namespace + "/" + gw.Name
	switch l.Protocol {
	case gwv1.HTTPProtocolType:
	case gwv1.HTTPSProtocolType:
		ls.tls = true
	default:
		ls.accepted, ls.reason = false, string(gwv1.ListenerReasonUnsupportedProtocol)
		ls.message = fmt.Sprintf("zoku serves HTTP and HTTPS listeners, not %s", l.Protocol)
		return ls
	}
	ls.entryPoints = b.entryPointsFor(int(l.Port), ls.tls)
	if len(ls.entryPoints) == 0 {
		kind := "without"
		if ls.tls {
			kind = "with"
		}
		ls.accepted, ls.reason = false, string(gwv1.ListenerReasonPortUnavailable)
		ls.message = fmt.Sprintf("no entry point of zoku's config listens on port %d %s TLS; add one", l.Port, kind)
		return ls
	}
	if ar := l.AllowedRoutes; ar != nil {
		if ns := ar.Namespaces; ns != nil && ns.From != nil {
			switch *ns.From {
			case gwv1.NamespacesFromAll:
				ls.fromAll = true
			case gwv1.NamespacesFromSame:
			default:
				ls.accepted, ls.reason = false, "UnsupportedValue"
				ls.message = fmt.Sprintf("allowedRoutes.namespaces.from %s is not supported by zoku; use Same or All", *ns.From)
				return ls
			}
		}
		for _, k := range ar.Kinds {
			if string(k.Kind) != "HTTPRoute" || (k.Group != nil && string(*k.Group) != gwv1.GroupName) {
				ls.resolved, ls.resolvedReason = false, string(gwv1.ListenerReasonInvalidRouteKinds)
				ls.resolvedMessage = fmt.Sprintf("zoku attaches HTTPRoutes only, not %s", k.Kind)
			}
		}
	}
	if !ls.tls {
		return ls
	}
	if l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode != gwv1.TLSModeTerminate {
		ls.accepted, ls.reason = false, "UnsupportedValue"
		ls.message = "zoku terminates TLS; mode Passthrough is not supported"
		return ls
	}
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		ls.acme = true
		return ls
	}
	for i, ref := range l.TLS.CertificateRefs {
		ns := gw.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		switch {
		case (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret"):
			ls.resolved, ls.resolvedReason = false, string(gwv1.ListenerReasonInvalidCertificateRef)
			ls.resolvedMessage = fmt.Sprintf("certificateRefs[%d]: zoku reads Secrets only", i)
		case ns != gw.Namespace:
			ls.resolved, ls.resolvedReason = false, string(gwv1.ListenerReasonRefNotPermitted)
			ls.resolvedMessage = fmt.Sprintf("certificateRefs[%d]: a Secret of another namespace needs a ReferenceGrant, which zoku does not read", i)
		default:
			b.begin()
			why := b.pinSecret(owner, ns, string(ref.Name))
			if why != "" {
				b.problem(owner, "listener %s: %s", l.Name, why)
				ls.resolved, ls.resolvedReason = false, string(gwv1.ListenerReasonInvalidCertificateRef)
				ls.resolvedMessage = why
			}
			b.end(owner)
		}
	}
	return ls
}

// gatewayStatus is the Gateway's status as zoku sees it; the status
// writer adds the addresses.
func gatewayStatus(gs *gatewayState) *gwv1.Gateway {
	gw := gs.gw.DeepCopy()
	gen := gw.Generation
	programmed := 0
	var statuses []gwv1.ListenerStatus
	for _, ls := range gs.listeners {
		var prev []metav1.Condition
		for _, s := range gw.Status.Listeners {
			if s.Name == ls.l.Name {
				prev = s.Conditions
			}
		}
		conds := append([]metav1.Condition(nil), prev...)
		ok := ls.accepted && ls.resolved
		if ok {
			programmed++
		}
		meta.SetStatusCondition(&conds, condition(string(gwv1.ListenerConditionAccepted), ls.accepted, ls.reason, ls.message, gen))
		meta.SetStatusCondition(&conds, condition(string(gwv1.ListenerConditionResolvedRefs), ls.resolved, ls.resolvedReason, ls.resolvedMessage, gen))
		preason := string(gwv1.ListenerReasonProgrammed)
		if !ok {
			preason = string(gwv1.ListenerReasonInvalid)
		}
		meta.SetStatusCondition(&conds, condition(string(gwv1.ListenerConditionProgrammed), ok, preason, "", gen))
		meta.SetStatusCondition(&conds, condition(string(gwv1.ListenerConditionConflicted), false, string(gwv1.ListenerReasonNoConflicts), "", gen))
		statuses = append(statuses, gwv1.ListenerStatus{
			Name: ls.l.Name, AttachedRoutes: ls.attached, Conditions: conds,
			SupportedKinds: []gwv1.RouteGroupKind{{Group: ptr(gwv1.Group(gwv1.GroupName)), Kind: "HTTPRoute"}},
		})
	}
	gw.Status.Listeners = statuses
	meta.SetStatusCondition(&gw.Status.Conditions, condition(string(gwv1.GatewayConditionAccepted), true, string(gwv1.GatewayReasonAccepted), "", gen))
	if programmed > 0 {
		meta.SetStatusCondition(&gw.Status.Conditions, condition(string(gwv1.GatewayConditionProgrammed), true, string(gwv1.GatewayReasonProgrammed), "", gen))
	} else {
		meta.SetStatusCondition(&gw.Status.Conditions, condition(string(gwv1.GatewayConditionProgrammed), false, string(gwv1.GatewayReasonInvalid), "no listener can be served", gen))
	}
	return gw
}

func ptr[T any](v T) *T { return &v }

// intersect returns the host names a route hostname and a listener
// hostname (empty: any) both match, or "" when none.
func intersect(route, listener string) string {
	switch {
	case listener == "":
		return route
	case route == "":
		return listener
	case route == listener:
		return route
	case strings.HasPrefix(listener, "*.") && !strings.HasPrefix(route, "*.") && strings.HasSuffix(route, listener[1:]):
		return route
	case strings.HasPrefix(route, "*.") && !strings.HasPrefix(listener, "*.") && strings.HasSuffix(listener, route[1:]):
		return listener
	}
	return ""
}

// parentKey is a parentRef's Gateway, or "" when it names no Gateway.
func parentKey(hr *gwv1.HTTPRoute, p gwv1.ParentReference) string {
	if (p.Group != nil && string(*p.Group) != gwv1.GroupName) || (p.Kind != nil && *p.Kind != "Gateway") {
		return ""
	}
	ns := hr.Namespace
	if p.Namespace != nil {
		ns = string(*p.Namespace)
	}
	return ns + "/" + string(p.Name)
}

// httpRoute translates one HTTPRoute and sets its status for zoku's
// parents.
func (b *builder) httpRoute(hr *gwv1.HTTPRoute, gws map[string]*gatewayState) {
	owner := "httproute " + hr.Namespace + "/" + hr.Name
	type parent struct {
		ref             gwv1.ParentReference
		accepted        bool
		reason, message string
		listeners       []*listenerState
		hostsByListener [][]string
	}
	var parents []*parent
	hostEPs := map[string][]string{} // host -> entry points
	var hostOrder []string
	acmeHosts := map[string]bool{}
	for _, p := range hr.Spec.ParentRefs {
		gs := gws[parentKey(hr, p)]
		if gs == nil {
			continue // not a Gateway of zoku's
		}
		pa := &parent{ref: p}
		parents = append(parents, pa)
		reason, msg := string(gwv1.RouteReasonNoMatchingParent), "no listener of the Gateway matches sectionName and port"
		for _, ls := range gs.listeners {
			if p.SectionName != nil && *p.SectionName != ls.l.Name {
				continue
			}
			if p.Port != nil && *p.Port != ls.l.Port {
				continue
			}
			if !ls.accepted || !ls.resolved {
				reason, msg = string(gwv1.RouteReasonNoMatchingParent), fmt.Sprintf("listener %s is not programmed", ls.l.Name)
				continue
			}
			if !ls.fromAll && hr.Namespace != gs.gw.Namespace {
				reason, msg = string(gwv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("listener %s allows routes of its own namespace only", ls.l.Name)
				continue
			}
			var hosts []string
			lh := ""
			if ls.l.Hostname != nil {
				lh = strings.ToLower(string(*ls.l.Hostname))
			}
			if len(hr.Spec.Hostnames) == 0 {
				if h := intersect("", lh); h != "" {
					hosts = append(hosts, h)
				}
			}
			for _, rh := range hr.Spec.Hostnames {
				if h := intersect(strings.ToLower(string(rh)), lh); h != "" {
					hosts = append(hosts, h)
				}
			}
			if len(hosts) == 0 {
				if lh == "" && len(hr.Spec.Hostnames) == 0 {
					reason, msg = "UnsupportedValue", "zoku routes by host name: give the HTTPRoute hostnames or the listener a hostname"
				} else {
					reason, msg = string(gwv1.RouteReasonNoMatchingListenerHostname), "no hostname of the route matches the listener's"
				}
				continue
			}
			pa.listeners = append(pa.listeners, ls)
			pa.hostsByListener = append(pa.hostsByListener, hosts)
			for _, h := range hosts {
				if _, ok := hostEPs[h]; !ok {
					hostOrder = append(hostOrder, h)
				}
				for _, ep := range ls.entryPoints {
					if !hasString(hostEPs[h], ep) {
						hostEPs[h] = append(hostEPs[h], ep)
					}
				}
				if ls.acme {
					acmeHosts[h] = true
				}
			}
		}
		if len(pa.listeners) > 0 {
			pa.accepted, reason, msg = true, string(gwv1.RouteReasonAccepted), ""
		}
		pa.reason, pa.message = reason, msg
	}
	if len(parents) == 0 {
		return
	}
	resolved, rreason, rmsg := true, string(gwv1.RouteReasonResolvedRefs), ""
	applied := false
	if len(hostOrder) > 0 {
		b.begin()
		resolved, rreason, rmsg = b.httpRules(owner, hr, hostOrder, hostEPs)
		for _, h := range hostOrder {
			if acmeHosts[h] && hostOK(h) {
				b.wantDomain(owner, h, hr.Annotations[annIssuer])
			}
		}
		applied = b.end(owner)
	}
	// Status, for zoku's parents only; other controllers' entries stay.
	st := hr.DeepCopy()
	gen := hr.Generation
	for _, pa := range parents {
		accepted, reason, msg := pa.accepted, pa.reason, pa.message
		if accepted && !applied {
			accepted, reason = false, "UnsupportedValue"
			msg = strings.Join(b.res.problems[owner], "; ")
		}
		if accepted {
			for _, ls := range pa.listeners {
				ls.attached++
			}
		}
		var conds []metav1.Condition
		idx := -1
		for i, ps := range st.Status.Parents {
			if string(ps.ControllerName) == b.set.controller && sameParent(ps.ParentRef, pa.ref, hr.Namespace) {
				idx, conds = i, append([]metav1.Condition(nil), ps.Conditions...)
			}
		}
		meta.SetStatusCondition(&conds, condition(string(gwv1.RouteConditionAccepted), accepted, reason, msg, gen))
		meta.SetStatusCondition(&conds, condition(string(gwv1.RouteConditionResolvedRefs), resolved, rreason, rmsg, gen))
		ps := gwv1.RouteParentStatus{ParentRef: pa.ref, ControllerName: gwv1.GatewayController(b.set.controller), Conditions: conds}
		if idx >= 0 {
			st.Status.Parents[idx] = ps
		} else {
			st.Status.Parents = append(st.Status.Parents, ps)
		}
	}
	b.res.routeStatus = append(b.res.routeStatus, st)
}

func sameParent(a, b gwv1.ParentReference, ns string) bool {
	str := func(p *gwv1.SectionName) string {
		if p == nil {
			return ""
		}
		return string(*p)
	}
	nsOf := func(p *gwv1.Namespace) string {
		if p == nil {
			return ns
		}
		return string(*p)
	}
	port := func(p *gwv1.PortNumber) int32 {
		if p == nil {
			return 0
		}
		return *p
	}
	return a.Name == b.Name && nsOf(a.Namespace) == nsOf(b.Namespace) && str(a.SectionName) == str(b.SectionName) && port(a.Port) == port(b.Port)
}

// httpRules adds the routes of an HTTPRoute's rules for its hosts; it
// returns the ResolvedRefs condition.
func (b *builder) httpRules(owner string, hr *gwv1.HTTPRoute, hosts []string, hostEPs map[string][]string) (bool, string, string) {
	resolved, reason, msg := true, string(gwv1.RouteReasonResolvedRefs), ""
	for ri, rule := range hr.Spec.Rules {
		var redirect *config.RouteRedirect
		headers := map[string]string{}
		for fi, f := range rule.Filters {
			switch f.Type {
			case gwv1.HTTPRouteFilterRequestRedirect:
				rr := f.RequestRedirect
				if rr == nil {
					b.problem(owner, "rules[%d].filters[%d]: requestRedirect is missing", ri, fi)
					continue
				}
				if rr.Path != nil {
					b.problem(owner, "rules[%d].filters[%d]: requestRedirect.path is not supported by zoku", ri, fi)
				}
				redirect = &config.RouteRedirect{Scheme: ptrStr(rr.Scheme)}
				if rr.Hostname != nil {
					redirect.Host = string(*rr.Hostname)
				}
				if rr.Port != nil {
					redirect.Port = int(*rr.Port)
				}
				if rr.StatusCode != nil {
					redirect.StatusCode = *rr.StatusCode
				}
			case gwv1.HTTPRouteFilterResponseHeaderModifier:
				hm := f.ResponseHeaderModifier
				if hm == nil {
					continue
				}
				if len(hm.Remove) > 0 {
					b.problem(owner, "rules[%d].filters[%d]: responseHeaderModifier.remove is not supported by zoku", ri, fi)
				}
				for _, h := range append(append([]gwv1.HTTPHeader(nil), hm.Set...), hm.Add...) {
					headers[string(h.Name)] = h.Value
				}
			default:
				b.problem(owner, "rules[%d].filters[%d]: filter %s is not supported by zoku", ri, fi, f.Type)
			}
		}
		svc := ""
		if redirect == nil {
			var ok bool
			var r, m string
			svc, ok, r, m = b.httpBackends(owner, hr, ri, rule.BackendRefs)
			if !ok {
				resolved, reason, msg = false, r, m
			}
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.HTTPRouteMatch{{}}
		}
		for mi, m := range matches {
			pt, pv := "PathPrefix", "/"
			if m.Path != nil {
				if m.Path.Type != nil {
					pt = string(*m.Path.Type)
				}
				if m.Path.Value != nil {
					pv = *m.Path.Value
				}
			}
			routes, err := pathRoutes(pt, pv)
			if err != nil {
				b.problem(owner, "rules[%d].matches[%d]: %v", ri, mi, err)
				continue
			}
			cond, err := matchConditions(m)
			if err != nil {
				b.problem(owner, "rules[%d].matches[%d]: %v", ri, mi, err)
				continue
			}
			for hi, host := range hosts {
				for k, r := range routes {
					r.Host, r.Service, r.Redirect, r.EntryPoints = host, svc, redirect, hostEPs[host]
					if len(headers) > 0 {
						r.ResponseHeaders = headers
					}
					r.Methods, r.Headers, r.HeadersRegex, r.Query, r.QueryRegex = cond.Methods, cond.Headers, cond.HeadersRegex, cond.Query, cond.QueryRegex
					b.addRoute(owner, name("hr", hr.Namespace, hr.Name, fmt.Sprintf("r%d-m%d-h%d-%d", ri, mi, hi, k)), &r)
				}
			}
		}
	}
	return resolved, reason, msg
}

// httpBackends returns the zoku service of a rule's backendRefs: one
// Service's own, or a weighted split of several. Backends that cannot be
// resolved are left out (and reported in ResolvedRefs); a rule left with
// none answers 500, as the specification asks.
func (b *builder) httpBackends(owner string, hr *gwv1.HTTPRoute, ri int, refs []gwv1.HTTPBackendRef) (string, bool, string, string) {
	ok, reason, msg := true, string(gwv1.RouteReasonResolvedRefs), ""
	type part struct {
		ref     backendRef
		weight  int
		servers []config.Server
		svc     string
	}
	var parts []part
	for i, r := range refs {
		if len(r.Filters) > 0 {
			b.problem(owner, "rules[%d].backendRefs[%d]: filters on a backend are not supported by zoku", ri, i)
		}
		if (r.Group != nil && *r.Group != "") || (r.Kind != nil && *r.Kind != "Service") {
			ok, reason, msg = false, string(gwv1.RouteReasonInvalidKind), fmt.Sprintf("rules[%d].backendRefs[%d]: zoku sends traffic to Services only", ri, i)
			continue
		}
		ns := hr.Namespace
		if r.Namespace != nil && string(*r.Namespace) != ns {
			ok, reason, msg = false, string(gwv1.RouteReasonRefNotPermitted), fmt.Sprintf("rules[%d].backendRefs[%d]: a Service of another namespace needs a ReferenceGrant, which zoku does not read", ri, i)
			continue
		}
		if r.Port == nil {
			ok, reason, msg = false, string(gwv1.RouteReasonUnsupportedValue), fmt.Sprintf("rules[%d].backendRefs[%d]: a Service backend needs a port", ri, i)
			continue
		}
		w := 1
		if r.Weight != nil {
			w = int(*r.Weight)
		}
		if w == 0 {
			continue
		}
		ref := backendRef{ns: ns, name: string(r.Name), port: *r.Port}
		servers, _, err := b.servers(ref)
		if err != nil {
			ok, reason, msg = false, string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("rules[%d].backendRefs[%d]: %v", ri, i, err)
			continue
		}
		parts = append(parts, part{ref: ref, weight: w, servers: servers})
	}
	if len(parts) == 1 {
		svc, err := b.service(owner, parts[0].ref)
		if err != nil {
			b.problem(owner, "rules[%d]: %v", ri, err)
		}
		return svc, ok, reason, msg
	}
	n := name("hr", hr.Namespace, hr.Name, fmt.Sprintf("r%d", ri))
	// Each backend's weight is shared among its servers: with l the
	// least common multiple of the server counts, a server of backend i
	// weighs weight_i * l / n_i.
	l := 1
	for _, p := range parts {
		if k := len(p.servers); k > 0 {
			l = lcm(l, k)
		}
	}
	s := &config.Service{Strategy: "weighted"}
	for _, p := range parts {
		for _, sv := range p.servers {
			sv.Weight = p.weight * l / len(p.servers)
			s.Servers = append(s.Servers, sv)
		}
	}
	if len(s.Servers) == 0 {
		s = &config.Service{Static: &config.Static{Status: 500, Body: "no backend of this route can be reached\n"}}
	}
	b.cur.Services[n] = s
	b.cur.Owners["services."+n] = owner
	return n, ok, reason, msg
}

func lcm(a, b int) int {
	g, x := a, b
	for x != 0 {
		g, x = x, g%x
	}
	if v := a / g * b; v <= 1<<20 {
		return v
	}
	return a // a bound: weights stay proportional within rounding
}

// matchConditions turns an HTTPRoute match's method, headers and query
// parameters into the router's route conditions (exact values, or RE2
// regular expressions for RegularExpression).
func matchConditions(m gwv1.HTTPRouteMatch) (config.Route, error) {
	var r config.Route
	if m.Method != nil {
		r.Methods = []string{string(*m.Method)}
	}
	put := func(exact, re *map[string]string, typ *string, name, value string) error {
		t := "Exact"
		if typ != nil {
			t = *typ
		}
		dst := exact
		switch t {
		case "Exact":
		case "RegularExpression":
			dst = re
		default:
			return fmt.Errorf("match type %s of %q is not supported by zoku (use Exact or RegularExpression)", t, name)
		}
		if *dst == nil {
			*dst = map[string]string{}
		}
		(*dst)[name] = value
		return nil
	}
	for _, h := range m.Headers {
		if err := put(&r.Headers, &r.HeadersRegex, (*string)(h.Type), string(h.Name), h.Value); err != nil {
			return r, err
		}
	}
	for _, q := range m.QueryParams {
		if err := put(&r.Query, &r.QueryRegex, (*string)(q.Type), string(q.Name), q.Value); err != nil {
			return r, err
		}
	}
	return r, nil
}
