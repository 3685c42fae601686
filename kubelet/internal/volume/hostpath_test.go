package volume

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// blockDevice returns a block device of the machine, or "".
func blockDevice() string {
	entries, _ := os.ReadDir("/dev")
	for _, e := range entries {
		p := filepath.Join("/dev", e.Name())
		if info, err := os.Stat(p); err == nil && info.Mode().Type() == fs.ModeDevice {
			return p
		}
	}
	return ""
}

func TestCheckHostPathType(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	missing := filepath.Join(dir, "missing")
	paths := map[string]string{"dir": dir, "file": file, "socket": sock, "char": "/dev/null", "missing": missing}
	if b := blockDevice(); b != "" {
		paths["block"] = b
	}
	// The kinds of path each type accepts; the others get wantErr.
	for _, tc := range []struct {
		typ     corev1.HostPathType
		accepts []string
		wantErr string
	}{
		{corev1.HostPathUnset, []string{"dir", "file", "socket", "char", "block"}, ""},
		{corev1.HostPathDirectory, []string{"dir"}, "is not a directory"},
		{corev1.HostPathDirectoryOrCreate, []string{"dir"}, "is not a directory"},
		{corev1.HostPathFile, []string{"file"}, "is not a file"},
		{corev1.HostPathFileOrCreate, []string{"file"}, "is not a file"},
		{corev1.HostPathSocket, []string{"socket"}, "is not a socket file"},
		{corev1.HostPathCharDev, []string{"char"}, "is not a character device"},
		{corev1.HostPathBlockDev, []string{"block"}, "is not a block device"},
	} {
		for kind, p := range paths {
			if kind == "missing" {
				continue
			}
			name := string(tc.typ) + "/" + kind
			if tc.typ == "" {
				name = "unset/" + kind
			}
			t.Run(name, func(t *testing.T) {
				err := checkHostPathType(p, tc.typ)
				accepted := false
				for _, a := range tc.accepts {
					accepted = accepted || a == kind
				}
				switch {
				case accepted && err != nil:
					t.Errorf("type %q, %s: %v; want no error", tc.typ, kind, err)
				case !accepted && (err == nil || !strings.Contains(err.Error(), "hostPath type check failed: "+p+" "+tc.wantErr)):
					t.Errorf("type %q, %s: %v; want %q", tc.typ, kind, err, tc.wantErr)
				}
			})
		}
	}

	// A missing path: refused by the types that check, made by the
	// *OrCreate ones and the unset type.
	for _, typ := range []corev1.HostPathType{corev1.HostPathDirectory, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev} {
		if err := checkHostPathType(missing, typ); err == nil {
			t.Errorf("type %q, missing path: got no error", typ)
		}
		if _, err := os.Lstat(missing); !os.IsNotExist(err) {
			t.Fatalf("type %q made the missing path", typ)
		}
	}
	for _, tc := range []struct {
		typ   corev1.HostPathType
		isDir bool
	}{{corev1.HostPathDirectoryOrCreate, true}, {corev1.HostPathFileOrCreate, false}, {corev1.HostPathUnset, true}} {
		p := filepath.Join(dir, "made-"+string(tc.typ), "x")
		if tc.typ == corev1.HostPathFileOrCreate {
			p = filepath.Join(dir, "made-file")
		}
		if err := checkHostPathType(p, tc.typ); err != nil {
			t.Errorf("type %q, missing path: %v", tc.typ, err)
			continue
		}
		info, err := os.Stat(p)
		if err != nil || info.IsDir() != tc.isDir {
			t.Errorf("type %q made %v, %v; want a directory: %v", tc.typ, info, err, tc.isDir)
		}
	}

	if err := checkHostPathType("relative/path", corev1.HostPathUnset); err == nil {
		t.Error("relative path: got no error")
	}
	if err := checkHostPathType(dir, "Bogus"); err == nil {
		t.Error("unknown type: got no error")
	}
}
