// Package mountinfo reads the kernel's mount table (/proc/self/mountinfo).
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Mount is one mount of /proc/self/mountinfo.
type Mount struct {
	MountPoint string
	FSType     string
	Options    string // per-superblock options (size=... for tmpfs)
}

// List reads the mount table of this process.
func List() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse parses the lines of a mountinfo file.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(s.Text())
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		mi := Mount{MountPoint: unescapeMountPath(fields[4]), FSType: fields[sep+1]}
		if sep+3 < len(fields) {
			mi.Options = fields[sep+3]
		}
		out = append(out, mi)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Under returns the mount points at dir or below it, deepest (most
// recently mounted) first: the order to unmount them in.
func Under(dir string) ([]string, error) {
	ms, err := List()
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	var out []string
	for i := len(ms) - 1; i >= 0; i-- {
		p := ms[i].MountPoint
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out, nil
}
