package mountinfo

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
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{MountPoint: "/", FSType: "ext4", Options: "rw,discard"},
		{MountPoint: "/run/netns", FSType: "ext4", Options: "rw"},
		{MountPoint: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/my secret", FSType: "tmpfs", Options: "rw,size=8192k"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("parsed (-want +got):\n%s", d)
	}
	if got := unescapeMountPath(`a\011b\134c\`); got != "a\tb\\c\\" {
		t.Errorf("unescape = %q", got)
	}
}
