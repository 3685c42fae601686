package app

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coxswain/coxswain/apiserver/internal/admission"
	"github.com/coxswain/coxswain/apiserver/internal/admission/defaulttolerationseconds"
	"github.com/coxswain/coxswain/apiserver/internal/admission/serviceaccount"
)

// admissionPlugins are the implemented admission plugins, in the order
// they run (upstream's relative order), each built from the options.
var admissionPlugins = []struct {
	name string
	new  func(o *Options) admission.Interface
}{
	{serviceaccount.PluginName, func(*Options) admission.Interface { return serviceaccount.Plugin{} }},
	{defaulttolerationseconds.PluginName, func(o *Options) admission.Interface {
		return defaulttolerationseconds.New(o.DefaultNotReadyTolerationSeconds, o.DefaultUnreachableTolerationSeconds)
	}},
}

// AdmissionPlugins returns the names of the implemented admission plugins,
// in the order they run; all are on by default.
func AdmissionPlugins() []string {
	out := make([]string, len(admissionPlugins))
	for i, p := range admissionPlugins {
		out[i] = p.name
	}
	return out
}

// admissionPlugins resolves --enable-admission-plugins and
// --disable-admission-plugins into the names of the plugins to run.
func (o *Options) admissionPlugins() ([]string, error) {
	known := AdmissionPlugins()
	var errs []error
	check := func(flag string, names []string) map[string]bool {
		set := map[string]bool{}
		for _, n := range names {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if !slices.Contains(known, n) {
				errs = append(errs, fmt.Errorf("--%s: admission plugin %q is not implemented (implemented: %s)", flag, n, strings.Join(known, ", ")))
				continue
			}
			set[n] = true
		}
		return set
	}
	enable := check("enable-admission-plugins", o.EnableAdmissionPlugins)
	disable := check("disable-admission-plugins", o.DisableAdmissionPlugins)
	for n := range enable {
		if disable[n] {
			errs = append(errs, fmt.Errorf("admission plugin %q is both enabled and disabled", n))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return slices.DeleteFunc(known, func(n string) bool { return disable[n] }), nil
}

// admissionChain builds the enabled admission plugins.
func (o *Options) admissionChain() (admission.Chain, error) {
	names, err := o.admissionPlugins()
	if err != nil {
		return nil, err
	}
	var chain admission.Chain
	for _, p := range admissionPlugins {
		if slices.Contains(names, p.name) {
			chain = append(chain, p.new(o))
		}
	}
	return chain, nil
}
