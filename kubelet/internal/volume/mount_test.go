package volume

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMountInfo(t *testing.T) {
	in := `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
90 27 0:55 / /var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/my\040secret rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=8192k
garbage line
`
	got, err := parseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountInfo{
		{mountPoint: "/", fsType: "ext4", options: "rw,discard"},
		{mountPoint: "/run/netns", fsType: "ext4", options: "rw"},
		{mountPoint: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/my secret", fsType: "tmpfs", options: "rw,size=8192k"},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(mountInfo{})); d != "" {
		t.Errorf("parsed (-want +got):\n%s", d)
	}
	if got := unescapeMountPath(`a\011b\134c\`); got != "a\tb\\c\\" {
		t.Errorf("unescape = %q", got)
	}
}
