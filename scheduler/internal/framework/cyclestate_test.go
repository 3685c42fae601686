package framework

import (
	"fmt"
	"sync"
	"testing"
)

func TestCycleState(t *testing.T) {
	s := NewCycleState()
	if _, ok := s.Read("a"); ok {
		t.Fatal("empty state has a")
	}
	s.Write("a", 1)
	s.Write("b", 2)
	s.Write("a", 3)
	for key, want := range map[StateKey]int{"a": 3, "b": 2} {
		if got, ok := s.Read(key); !ok || got != want {
			t.Errorf("Read(%s) = %v, %v; want %d", key, got, ok, want)
		}
	}
	// Readers on many goroutines while a writer adds keys: -race checks
	// that reads never see a half-written slice.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if v, ok := s.Read("a"); !ok || v != 3 {
					t.Errorf("Read(a) = %v, %v during writes", v, ok)
					return
				}
			}
		})
	}
	for i := range 50 {
		s.Write(StateKey(fmt.Sprint("k", i)), i)
	}
	wg.Wait()
	if v, ok := s.Read("k49"); !ok || v != 49 {
		t.Errorf("Read(k49) = %v, %v", v, ok)
	}
}
