package framework

import (
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
)

// AffinityTerm is a parsed pod (anti-)affinity term, as upstream's.
type AffinityTerm struct {
	Namespaces        sets.Set[string]
	Selector          labels.Selector
	TopologyKey       string
	NamespaceSelector labels.Selector
	// id names what Matches depends on (selector, namespaces, namespace
	// selector), the same for equal terms of different pods, so a
	// TermMatchMemo answers each distinct term once per scheduling cycle;
	// 0 when not interned.
	id uint32
}

// ID names what Matches depends on, the same for equal terms of
// different pods; 0 when the term is not interned.
func (t *AffinityTerm) ID() uint32 { return t.id }

// maxTermIDs bounds the intern table; terms beyond it are not memoized.
const maxTermIDs = 1 << 16

var termIDs = struct {
	sync.Mutex
	m map[string]uint32
}{m: map[string]uint32{}}

func internTerm(t *AffinityTerm) uint32 {
	ns := sets.List(t.Namespaces)
	key := fmt.Sprintf("%s|%t|%s|%s|%t", t.Selector.String(), t.Selector.Empty(), strings.Join(ns, ","),
		t.NamespaceSelector.String(), t.NamespaceSelector.Empty())
	termIDs.Lock()
	defer termIDs.Unlock()
	if id, ok := termIDs.m[key]; ok {
		return id
	}
	if len(termIDs.m) >= maxTermIDs {
		return 0
	}
	id := uint32(len(termIDs.m) + 1)
	termIDs.m[key] = id
	return id
}

func numTermIDs() int {
	termIDs.Lock()
	defer termIDs.Unlock()
	return len(termIDs.m)
}

// TermMatchMemo remembers, for one pod in one namespace, whether each
// interned term matches it: existing pods' terms repeat (every replica of
// a workload carries the same ones), so a scheduling cycle tests each
// distinct term once instead of once per pod.
type TermMatchMemo struct {
	pod      *corev1.Pod
	nsLabels labels.Set
	results  []int8 // by term id: 0 unknown, 1 match, 2 no match
}

// NewTermMatchMemo returns an empty memo for pod.
func NewTermMatchMemo(pod *corev1.Pod, nsLabels labels.Set) *TermMatchMemo {
	return &TermMatchMemo{pod: pod, nsLabels: nsLabels, results: make([]int8, numTermIDs()+1)}
}

// Matches is t.Matches(pod, nsLabels), remembered per distinct term.
func (m *TermMatchMemo) Matches(t *AffinityTerm) bool {
	if t.id == 0 || int(t.id) >= len(m.results) {
		return t.Matches(m.pod, m.nsLabels)
	}
	switch m.results[t.id] {
	case 1:
		return true
	case 2:
		return false
	}
	ok := t.Matches(m.pod, m.nsLabels)
	m.results[t.id] = 2
	if ok {
		m.results[t.id] = 1
	}
	return ok
}

// Matches says whether pod (in a namespace with nsLabels) is selected by
// the term: its namespace is listed or selected, and its labels match.
func (t *AffinityTerm) Matches(pod *corev1.Pod, nsLabels labels.Set) bool {
	if t.Namespaces.Has(pod.Namespace) || t.NamespaceSelector.Matches(nsLabels) {
		return t.Selector.Matches(labels.Set(pod.Labels))
	}
	return false
}

// SetNamespaces replaces the term's namespaces and namespace selector
// (the incoming pod's namespaceSelector resolved to names).
func (t *AffinityTerm) SetNamespaces(namespaces sets.Set[string], nsSelector labels.Selector) {
	t.Namespaces, t.NamespaceSelector = namespaces, nsSelector
	t.id = internTerm(t)
}

// WeightedAffinityTerm is a preferred term with its weight.
type WeightedAffinityTerm struct {
	AffinityTerm
	Weight int32
}

// NewAffinityTerm parses term of pod: no namespaces and no
// namespaceSelector means the pod's own namespace; a nil namespaceSelector
// selects nothing, an empty one every namespace.
func NewAffinityTerm(pod *corev1.Pod, term *corev1.PodAffinityTerm) (AffinityTerm, error) {
	selector, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		return AffinityTerm{}, err
	}
	if term.LabelSelector == nil {
		selector = labels.Nothing()
	}
	// matchLabelKeys and mismatchLabelKeys, as upstream merges them at
	// admission time.
	if len(term.MatchLabelKeys) > 0 || len(term.MismatchLabelKeys) > 0 {
		for _, k := range term.MatchLabelKeys {
			if v, ok := pod.Labels[k]; ok {
				r, err := labels.NewRequirement(k, "in", []string{v})
				if err == nil {
					selector = selector.Add(*r)
				}
			}
		}
		for _, k := range term.MismatchLabelKeys {
			if v, ok := pod.Labels[k]; ok {
				r, err := labels.NewRequirement(k, "notin", []string{v})
				if err == nil {
					selector = selector.Add(*r)
				}
			}
		}
	}
	namespaces := sets.New(term.Namespaces...)
	if len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
		namespaces.Insert(pod.Namespace)
	}
	nsSelector := labels.Nothing()
	if term.NamespaceSelector != nil {
		if nsSelector, err = metav1.LabelSelectorAsSelector(term.NamespaceSelector); err != nil {
			return AffinityTerm{}, err
		}
	}
	t := AffinityTerm{Namespaces: namespaces, Selector: selector, TopologyKey: term.TopologyKey, NamespaceSelector: nsSelector}
	t.id = internTerm(&t)
	return t, nil
}

func affinityTerms(pod *corev1.Pod, terms []corev1.PodAffinityTerm) []AffinityTerm {
	if len(terms) == 0 {
		return nil
	}
	out := make([]AffinityTerm, 0, len(terms))
	for i := range terms {
		// Invalid terms were rejected by validation; skip any left.
		if t, err := NewAffinityTerm(pod, &terms[i]); err == nil {
			out = append(out, t)
		}
	}
	return out
}

func weightedAffinityTerms(pod *corev1.Pod, terms []corev1.WeightedPodAffinityTerm) []WeightedAffinityTerm {
	if len(terms) == 0 {
		return nil
	}
	out := make([]WeightedAffinityTerm, 0, len(terms))
	for i := range terms {
		if terms[i].Weight == 0 {
			continue
		}
		if t, err := NewAffinityTerm(pod, &terms[i].PodAffinityTerm); err == nil {
			out = append(out, WeightedAffinityTerm{AffinityTerm: t, Weight: terms[i].Weight})
		}
	}
	return out
}

// setAffinityTerms parses pod's inter-pod affinity into pi.
func (pi *PodInfo) setAffinityTerms() {
	a := pi.Pod.Spec.Affinity
	if a == nil {
		return
	}
	if pa := a.PodAffinity; pa != nil {
		pi.RequiredAffinityTerms = affinityTerms(pi.Pod, pa.RequiredDuringSchedulingIgnoredDuringExecution)
		pi.PreferredAffinityTerms = weightedAffinityTerms(pi.Pod, pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		pi.RequiredAntiAffinityTerms = affinityTerms(pi.Pod, pa.RequiredDuringSchedulingIgnoredDuringExecution)
		pi.PreferredAntiAffinityTerms = weightedAffinityTerms(pi.Pod, pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
}

// HasAffinity says whether the pod has any inter-pod affinity or
// anti-affinity term.
func (pi *PodInfo) HasAffinity() bool {
	return len(pi.RequiredAffinityTerms) > 0 || len(pi.RequiredAntiAffinityTerms) > 0 ||
		len(pi.PreferredAffinityTerms) > 0 || len(pi.PreferredAntiAffinityTerms) > 0
}
