package iptables

import (
	"bytes"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// BenchmarkBuildAll measures generating every rule in memory (no iptables).
func BenchmarkBuildAll(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := newCache(nil)
			for i := range n {
				ip := fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)
				if err := c.services.Add(service(fmt.Sprintf("ns%d", i%20), fmt.Sprintf("s%d", i), ip, corev1.ServiceTypeClusterIP, httpPort(0))); err != nil {
					b.Fatal(err)
				}
				var eps []discoveryv1.Endpoint
				for e := range 5 {
					eps = append(eps, ep(fmt.Sprintf("10.%d.%d.%d", 128+(i*5+e)/65536, (i*5+e)/256%256, (i*5+e)%256), "node-a", true))
				}
				if err := c.eps.Add(slice(fmt.Sprintf("ns%d", i%20), fmt.Sprintf("s%d", i), httpPort(0), eps...)); err != nil {
					b.Fatal(err)
				}
			}
			p := New(c.svcLs, c.sliceLs, Options{Config: testConfig})
			b.ResetTimer()
			for range b.N {
				var out bytes.Buffer
				p.buildAll(&out)
			}
		})
	}
}
