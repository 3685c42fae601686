package cacher

import (
	"sort"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// labelIndex maps "key=value" to the keys of the objects carrying that
// label, so an equality selector reads its candidates instead of scanning
// every object.
type labelIndex map[string]map[string]struct{}

func (ix labelIndex) add(e *Entry) {
	for k, v := range e.Labels {
		pair := k + "=" + v
		set := ix[pair]
		if set == nil {
			set = map[string]struct{}{}
			ix[pair] = set
		}
		set[e.Key] = struct{}{}
	}
}

func (ix labelIndex) remove(e *Entry) {
	for k, v := range e.Labels {
		pair := k + "=" + v
		if set := ix[pair]; set != nil {
			delete(set, e.Key)
			if len(set) == 0 {
				delete(ix, pair)
			}
		}
	}
}

// candidates returns, sorted, the keys that can match sel, when one of its
// requirements is an equality or set inclusion the index answers; ok is
// false when the selector needs a scan.
func (ix labelIndex) candidates(sel labels.Selector) (keys []string, ok bool) {
	if sel == nil || sel.Empty() {
		return nil, false
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil, false
	}
	best, bestSize := -1, 0
	for i, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
		default:
			continue
		}
		size := 0
		for _, v := range r.Values().UnsortedList() {
			size += len(ix[r.Key()+"="+v])
		}
		if best < 0 || size < bestSize {
			best, bestSize = i, size
		}
	}
	if best < 0 {
		return nil, false
	}
	r := reqs[best]
	keys = make([]string, 0, bestSize)
	for _, v := range r.Values().UnsortedList() {
		for k := range ix[r.Key()+"="+v] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, true
}
