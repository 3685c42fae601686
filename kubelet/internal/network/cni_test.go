package network

import (
	"encoding/json"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func TestBridgeConfig(t *testing.T) {
	data, err := BridgeConfig("cxs0", "10.244.1.0/24", "/var/lib/kubelet/cni/networks")
	if err != nil {
		t.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "coxswain" || len(l.Plugins) != 1 || l.Plugins[0].Network.Type != "bridge" {
		t.Fatalf("config = %s", data)
	}
	var p struct {
		Bridge string `json:"bridge"`
		IPMasq bool   `json:"ipMasq"`
		IPAM   struct {
			Type   string                `json:"type"`
			Ranges [][]map[string]string `json:"ranges"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(l.Plugins[0].Bytes, &p); err != nil {
		t.Fatal(err)
	}
	if p.Bridge != "cxs0" || p.IPMasq || p.IPAM.Type != "host-local" || p.IPAM.Ranges[0][0]["subnet"] != "10.244.1.0/24" {
		t.Errorf("plugin = %+v", p)
	}
	if _, err := BridgeConfig("cxs0", "bogus", ""); err == nil {
		t.Error("bad CIDR: no error")
	}
}
