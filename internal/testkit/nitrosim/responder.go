package nitrosim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// codeInUse is returned when deleting a responder action a policy uses, or
// a policy that is bound. The reference is not sure which code the
// appliance sends here; 315 ("resource in use") is the documented generic
// one.
const codeInUse = 315

func (s *Sim) responderAction(method, name string, a attrs) reply {
	switch method {
	case http.MethodPost:
		if rep := a.only("name", "type", "target", "comment", "bypasssafetycheck", "htmlpage", "responsestatuscode", "reasonphrase"); rep.code != 0 {
			return rep
		}
		n := a.str("name")
		switch {
		case !validPolicyName(n):
			return fail(278, "Invalid argument [name]")
		case s.actions[n] != nil:
			return fail(273, "Resource already exists")
		}
		act := &action{name: n, typ: strings.ToLower(a.str("type")), target: a.str("target")}
		switch act.typ {
		case "respondwith", "redirect":
			f, err := compileText(act.target)
			if err != nil {
				return fail(278, "Invalid argument [target: Expression syntax error: %v]", err)
			}
			act.text = f
		case "noop":
		default:
			return fail(278, "Invalid argument [type %q: simulated are respondwith, redirect, noop]", act.typ)
		}
		s.actions[n] = act
		return ok(http.StatusCreated)
	case http.MethodGet:
		act := s.actions[name]
		if act == nil {
			return fail(258, "No such resource [name, %s]", name)
		}
		return reply{status: http.StatusOK, key: "responderaction", value: []any{map[string]any{"name": act.name, "type": act.typ, "target": act.target}}}
	case http.MethodDelete:
		if s.actions[name] == nil {
			return fail(258, "No such resource [name, %s]", name)
		}
		for _, p := range s.policies {
			if p.action == name {
				return fail(codeInUse, "Resource is in use [action %s is used by policy %s]", name, p.name)
			}
		}
		delete(s.actions, name)
		return ok(http.StatusOK)
	}
	return fail(278, "Invalid argument [responderaction does not support %s]", method)
}

func validPolicyName(n string) bool {
	if n == "" || len(n) > 127 {
		return false
	}
	return validObjectName(n[:min(len(n), 31)])
}

func (s *Sim) responderPolicy(method, name string, a attrs) reply {
	switch method {
	case http.MethodPost:
		if rep := a.only("name", "rule", "action", "undefaction", "comment", "logaction", "appflowaction"); rep.code != 0 {
			return rep
		}
		n := a.str("name")
		switch {
		case !validPolicyName(n):
			return fail(278, "Invalid argument [name]")
		case s.policies[n] != nil:
			return fail(273, "Resource already exists")
		}
		act := a.str("action")
		if s.actions[act] == nil && act != "NOOP" && act != "RESET" && act != "DROP" {
			return fail(258, "No such resource [action, %s]", act)
		}
		match, err := compileRule(a.str("rule"))
		if err != nil {
			return fail(278, "Invalid argument [rule: Expression syntax error: %v]", err)
		}
		s.policies[n] = &policy{name: n, rule: a.str("rule"), action: act, match: match}
		return ok(http.StatusCreated)
	case http.MethodGet:
		p := s.policies[name]
		if p == nil {
			return fail(258, "No such resource [name, %s]", name)
		}
		return reply{status: http.StatusOK, key: "responderpolicy", value: []any{map[string]any{"name": p.name, "rule": p.rule, "action": p.action}}}
	case http.MethodDelete:
		if s.policies[name] == nil {
			return fail(258, "No such resource [name, %s]", name)
		}
		for _, vs := range s.vservers {
			for _, b := range vs.responders {
				if b.policy == name {
					return fail(codeInUse, "Resource is in use [policy %s is bound to %s]", name, vs.name)
				}
			}
		}
		delete(s.policies, name)
		return ok(http.StatusOK)
	}
	return fail(278, "Invalid argument [responderpolicy does not support %s]", method)
}

// policyBinding is lbvserver_ or csvserver_responderpolicy_binding.
func (s *Sim) policyBinding(kind, method, vsName string, args map[string]string, a attrs) reply {
	resource := kind + "vserver_responderpolicy_binding"
	switch method {
	case http.MethodPut, http.MethodPost:
		if rep := a.only("name", "policyname", "priority", "gotopriorityexpression", "bindpoint", "invoke", "labeltype", "labelname"); rep.code != 0 {
			return rep
		}
		vs := s.vservers[a.str("name")]
		if vs == nil || vs.kind != kind {
			return fail(461, "No such Vserver [%s]", a.str("name"))
		}
		if !s.features["responder"] {
			return fail(1067, "Feature(s) not enabled [RESPONDER]")
		}
		p := s.policies[a.str("policyname")]
		if p == nil {
			return fail(2054, "No such policy exists [%s]", a.str("policyname"))
		}
		prio, valid := a.integer("priority")
		if !valid || prio < 1 {
			return fail(278, "Invalid argument [priority]")
		}
		gotoExpr := a.str("gotopriorityexpression")
		if gotoExpr == "" {
			gotoExpr = "END"
		}
		for _, b := range vs.responders {
			if b.policy == p.name {
				return fail(273, "Resource already exists [policy %s is bound]", p.name)
			}
			if b.priority == prio {
				return fail(3041, "A policy is already bound to the specified priority")
			}
		}
		vs.responders = append(vs.responders, respBinding{policy: p.name, priority: prio, gotoExpr: gotoExpr})
		return ok(http.StatusOK)
	case http.MethodGet:
		vs := s.vservers[vsName]
		if vs == nil || vs.kind != kind {
			return fail(461, "No such Vserver [%s]", vsName)
		}
		if len(vs.responders) == 0 {
			return ok(http.StatusOK) // the appliance leaves the key out when nothing is bound
		}
		var out []any
		for _, b := range vs.responders {
			// Numbers come back as strings, as on the appliance.
			out = append(out, map[string]any{"name": vs.name, "policyname": b.policy, "priority": strconv.Itoa(b.priority), "gotopriorityexpression": b.gotoExpr, "bindpoint": "REQUEST"})
		}
		return reply{status: http.StatusOK, key: resource, value: out}
	case http.MethodDelete:
		vs := s.vservers[vsName]
		if vs == nil || vs.kind != kind {
			return fail(461, "No such Vserver [%s]", vsName)
		}
		for i, b := range vs.responders {
			if b.policy != args["policyname"] {
				continue
			}
			if p := args["priority"]; p != "" && p != strconv.Itoa(b.priority) {
				continue
			}
			vs.responders = slices.Delete(vs.responders, i, i+1)
			return ok(http.StatusOK)
		}
		return fail(3093, "Cannot unbind a policy that is not bound")
	}
	return fail(278, "Invalid argument [%s does not support %s]", resource, method)
}
