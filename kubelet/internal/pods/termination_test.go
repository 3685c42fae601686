package pods

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/kubelet/internal/logs"
)

func TestTerminationMessage(t *testing.T) {
	dir := t.TempDir()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}
	w := newTestWorker(pod)
	w.m.cfg.RootDir, w.m.cfg.LogDir = filepath.Join(dir, "root"), filepath.Join(dir, "logs")
	c := &pod.Spec.Containers[0]

	mounts, err := w.terminationMessageFile(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 || mounts[0].Destination != "/dev/termination-log" {
		t.Fatalf("mounts %+v, want one at /dev/termination-log", mounts)
	}
	if fi, err := os.Stat(mounts[0].Source); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("termination file: %v, %v; want mode 0666", fi, err)
	}
	// A log of 100 lines, one of them written in two partial entries.
	lf, err := logs.Create(logs.ContainerPath(w.m.cfg.LogDir, "ns", "p", "u", "c", 0), logs.Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	out := lf.Stream("stdout")
	for i := range 100 {
		fmt.Fprintf(out, "line %d\n", i)
	}
	_ = out.Close()
	_ = lf.Close()

	if got := w.terminationMessage(pod, c, 0, 1); got != "" {
		t.Errorf("policy File, empty file: message %q, want none", got)
	}
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	if got := w.terminationMessage(pod, c, 0, 0); got != "" {
		t.Errorf("FallbackToLogsOnError, exit 0: message %q, want none", got)
	}
	got := w.terminationMessage(pod, c, 0, 1)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(got) > maxTerminationMessageLogLength || lines[len(lines)-1] != "line 99" {
		t.Errorf("FallbackToLogsOnError, exit 1: %d bytes ending %q; want at most %d ending line 99", len(got), lines[len(lines)-1], maxTerminationMessageLogLength)
	}
	if len(lines) > maxTerminationMessageLogLines {
		t.Errorf("%d lines, want at most %d", len(lines), maxTerminationMessageLogLines)
	}

	// The file wins, its last 4 KiB.
	big := strings.Repeat("x", 5000) + "END"
	if err := os.WriteFile(mounts[0].Source, []byte(big), 0o666); err != nil {
		t.Fatal(err)
	}
	got = w.terminationMessage(pod, c, 0, 1)
	if len(got) != maxTerminationMessageLength || !strings.HasSuffix(got, "END") {
		t.Errorf("message of %d bytes ending %q; want the file's last %d", len(got), got[max(len(got)-3, 0):], maxTerminationMessageLength)
	}

	c.TerminationMessagePath = "/tmp/custom"
	mounts, err = w.terminationMessageFile(c, 1)
	if err != nil || mounts[0].Destination != "/tmp/custom" {
		t.Errorf("custom path: mounts %+v, %v", mounts, err)
	}
}

func TestLastLogLinesPartial(t *testing.T) {
	p := filepath.Join(t.TempDir(), "0.log")
	data := "2026-01-01T00:00:00Z stdout P hel\n2026-01-01T00:00:00Z stdout F lo\n2026-01-01T00:00:00Z stderr F bye\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := lastLogLines(p, 80, 2048)
	if err != nil || got != "hello\nbye\n" {
		t.Errorf("lastLogLines = %q, %v; want %q", got, err, "hello\nbye\n")
	}
}

// recorded is an Event the fake recorder got.
type recorded struct{ eventType, reason, message string }

type fakeRecorder struct{ events []recorded }

func (f *fakeRecorder) Eventf(_ runtime.Object, eventType, reason, _ string, format string, args ...any) {
	f.events = append(f.events, recorded{eventType, reason, fmt.Sprintf(format, args...)})
}

func TestBackOffEvents(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}
	w := newTestWorker(pod)
	rec := &fakeRecorder{}
	w.m.cfg.Recorder = rec
	c := &pod.Spec.Containers[0]
	cs := w.state("c")

	cs.waitReason, cs.waitMessage, cs.nextStart = "ErrImagePull", "401 Unauthorized", time.Now().Add(time.Minute)
	w.backOff(pod, c, cs)
	w.backOff(pod, c, cs) // once per back-off
	if cs.waitReason != "ImagePullBackOff" || !strings.Contains(cs.waitMessage, "401") {
		t.Errorf("waiting %s: %s; want ImagePullBackOff with the pull's error", cs.waitReason, cs.waitMessage)
	}
	want := []recorded{
		{corev1.EventTypeNormal, "BackOff", `Back-off pulling image "img"`},
		{corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff"},
	}
	if fmt.Sprint(rec.events) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", rec.events, want)
	}

	rec.events = nil
	cs.waitReason, cs.waitMessage, cs.everRan, cs.nextStart = "", "", true, time.Now().Add(2*time.Minute)
	w.backOff(pod, c, cs)
	want = []recorded{{corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container c in pod p_ns(u)"}}
	if fmt.Sprint(rec.events) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", rec.events, want)
	}
}
