package validation

import (
	"testing"
)

// FuzzValidators asserts that every fast validator returns exactly what its
// apimachinery original returns, for any string (and for the string placed
// in a label key's prefix and name positions).
//
//	go test -run '^$' -fuzz FuzzValidators -fuzztime 30s ./internal/registry/validation/
func FuzzValidators(f *testing.F) {
	for _, s := range testInputs() {
		if len(s) > 4 { // the exhaustive short strings add little as seeds
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAll(t, s)
		checkAll(t, s+"/"+s)
		checkAll(t, "x."+s+".y/z")
	})
}
