package volume

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func mode(m int32) *int32 { return &m }

func TestConfigMapPayload(t *testing.T) {
	cm := &corev1.ConfigMap{
		Data:       map[string]string{"a": "1", "b": "2"},
		BinaryData: map[string][]byte{"bin": {0, 1}},
	}
	for _, tc := range []struct {
		name     string
		items    []corev1.KeyToPath
		optional bool
		want     map[string]FileProjection
		wantErr  string
	}{
		{name: "all keys with defaultMode", want: map[string]FileProjection{
			"a": {Data: []byte("1"), Mode: 0o640}, "b": {Data: []byte("2"), Mode: 0o640}, "bin": {Data: []byte{0, 1}, Mode: 0o640},
		}},
		{name: "items with paths and modes", items: []corev1.KeyToPath{{Key: "a", Path: "dir/first"}, {Key: "bin", Path: "b.bin", Mode: mode(0o400)}},
			want: map[string]FileProjection{"dir/first": {Data: []byte("1"), Mode: 0o640}, "b.bin": {Data: []byte{0, 1}, Mode: 0o400}}},
		{name: "missing key", items: []corev1.KeyToPath{{Key: "a", Path: "a"}, {Key: "nope", Path: "n"}},
			wantErr: "configmap references non-existent config key: nope"},
		{name: "missing key, optional", items: []corev1.KeyToPath{{Key: "a", Path: "a"}, {Key: "nope", Path: "n"}}, optional: true,
			want: map[string]FileProjection{"a": {Data: []byte("1"), Mode: 0o640}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := configMapPayload(tc.items, cm, mode(0o640), tc.optional)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("payload (-want +got):\n%s", d)
			}
		})
	}
	_, err := keysPayload([]corev1.KeyToPath{{Key: "k", Path: "k"}}, map[string][]byte{}, nil, false, "secret references non-existent secret key: %s")
	if err == nil || err.Error() != "secret references non-existent secret key: k" {
		t.Errorf("secret missing key: %v", err)
	}
}

func TestDownwardAPIPayload(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": `say "hi"`},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "limited", Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			}},
			{Name: "free"},
		}},
	}
	alloc := func() corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")}
	}
	field := func(path, fp string) corev1.DownwardAPIVolumeFile {
		return corev1.DownwardAPIVolumeFile{Path: path, FieldRef: &corev1.ObjectFieldSelector{FieldPath: fp}}
	}
	res := func(path, container, r, divisor string) corev1.DownwardAPIVolumeFile {
		f := corev1.DownwardAPIVolumeFile{Path: path, ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: container, Resource: r}}
		if divisor != "" {
			f.ResourceFieldRef.Divisor = resource.MustParse(divisor)
		}
		return f
	}
	items := []corev1.DownwardAPIVolumeFile{
		field("name", "metadata.name"), field("namespace", "metadata.namespace"), field("uid", "metadata.uid"),
		field("labels", "metadata.labels"), field("annotations", "metadata.annotations"), field("app", "metadata.labels['app']"),
		res("cpu_limit", "limited", "limits.cpu", "1m"), res("cpu_cores", "limited", "limits.cpu", ""),
		res("mem_limit", "limited", "limits.memory", "1Mi"), res("cpu_request", "limited", "requests.cpu", "1m"),
		res("free_cpu", "free", "limits.cpu", ""), res("free_mem", "free", "limits.memory", "1Gi"),
	}
	items[0].Mode = mode(0o400)
	got, err := downwardAPIPayload(pod, items, mode(0o644), alloc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"name": "web", "namespace": "shop", "uid": "uid-1",
		"labels": "app=\"web\"\ntier=\"front\"", "annotations": `note="say \"hi\""`, "app": "web",
		"cpu_limit": "1500", "cpu_cores": "2", "mem_limit": "64", "cpu_request": "250",
		"free_cpu": "4", "free_mem": "8",
	}
	gotData := map[string]string{}
	for p, f := range got {
		gotData[p] = string(f.Data)
		wantMode := int32(0o644)
		if p == "name" {
			wantMode = 0o400
		}
		if f.Mode != wantMode {
			t.Errorf("%s: mode %o, want %o", p, f.Mode, wantMode)
		}
	}
	if d := cmp.Diff(want, gotData); d != "" {
		t.Errorf("payload (-want +got):\n%s", d)
	}

	for _, bad := range []corev1.DownwardAPIVolumeFile{
		field("x", "spec.nodeName"),
		res("x", "", "limits.cpu", ""),
		res("x", "nope", "limits.cpu", ""),
		res("x", "limited", "limits.gpu", ""),
	} {
		if _, err := downwardAPIPayload(pod, []corev1.DownwardAPIVolumeFile{bad}, nil, alloc); err == nil {
			t.Errorf("item %+v: got no error", bad)
		}
	}
}

func TestUnsupportedVolume(t *testing.T) {
	m := New(Config{RootDir: t.TempDir()})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "share", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/export"}}},
			{Name: "huge", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumHugePages}}},
		}},
	}
	vols, errs := m.SetUp(t.Context(), pod)
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	want := []string{
		`MountVolume.SetUp failed for volume "share" : unsupported volume source nfs`,
		`MountVolume.SetUp failed for volume "huge" : emptyDir medium "HugePages" is not supported`,
	}
	if d := cmp.Diff(want, got); d != "" || len(vols) != 0 {
		t.Errorf("errors (-want +got):\n%s\nvolumes %v", d, vols)
	}
}
