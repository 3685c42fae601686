package volume

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FileProjection is one file of a volume's content: its data and mode.
type FileProjection struct {
	Data []byte
	Mode int32
}

// The names of upstream's atomic writer layout.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
	// tsDirLayout prefixes the timestamped directories, as upstream's
	// ..2006_01_02_15_04_05.<random>.
	tsDirLayout = "..2006_01_02_15_04_05."
)

// validatePayloadPath checks a payload path as upstream's atomic writer
// does: relative, no "..", no element starting with "..".
func validatePayloadPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > 4096:
		return fmt.Errorf("path %.40q...: longer than 4096 characters", p)
	case filepath.IsAbs(p):
		return fmt.Errorf("path %q: must be relative", p)
	}
	for _, e := range strings.Split(p, "/") {
		switch {
		case e == "..":
			return fmt.Errorf("path %q: must not contain '..'", p)
		case strings.HasPrefix(e, ".."):
			return fmt.Errorf("path %q: must not start with '..'", p)
		case len(e) > 255:
			return fmt.Errorf("path %q: element longer than 255 characters", p)
		}
	}
	return nil
}

// cleanPayload validates the payload's paths and returns it keyed by the
// cleaned paths.
func cleanPayload(payload map[string]FileProjection) (map[string]FileProjection, error) {
	out := make(map[string]FileProjection, len(payload))
	for p, f := range payload {
		if err := validatePayloadPath(p); err != nil {
			return nil, err
		}
		c := filepath.Clean(p)
		if c == "." {
			return nil, fmt.Errorf("path %q: names the volume itself", p)
		}
		out[c] = f
	}
	// A file may not also be a directory of another file (a and a/b).
	for p := range out {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			if _, ok := out[d]; ok {
				return nil, fmt.Errorf("path %q: %q is also a file", p, d)
			}
		}
	}
	return out, nil
}

// payloadSum fingerprints a payload, so an unchanged one is not compared
// with the files again.
func payloadSum(payload map[string]FileProjection) [32]byte {
	paths := make([]string, 0, len(payload))
	for p := range payload {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.New()
	var n [8]byte
	for _, p := range paths {
		f := payload[p]
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
		binary.BigEndian.PutUint64(n[:], uint64(f.Mode))
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Data)))
		h.Write(n[:])
		h.Write(f.Data)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// writeAtomic makes dir hold exactly payload, as upstream's AtomicWriter
// does, so that a reader never sees a mix of old and new files:
//
//  1. the files are written into a new timestamped directory
//     ..2006_01_02_15_04_05.<random>;
//  2. the symlink ..data_tmp -> <the new directory> is renamed over ..data,
//     which switches every file at once;
//  3. each top-level name of the payload is a symlink name -> ..data/name;
//  4. the previous timestamped directory and the names no longer in the
//     payload are removed.
//
// Nothing is written when dir already holds the payload. It reports
// whether it wrote.
func writeAtomic(dir string, payload map[string]FileProjection) (bool, error) {
	payload, err := cleanPayload(payload)
	if err != nil {
		return false, err
	}
	dataLink := filepath.Join(dir, dataDirName)
	oldTs, err := os.Readlink(dataLink)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		oldTs = ""
	case err != nil:
		return false, fmt.Errorf("read %s: %w", dataLink, err)
	case !isTsDirName(oldTs):
		return false, fmt.Errorf("%s points to %q, not a timestamped directory", dataLink, oldTs)
	}
	top := topLevelNames(payload)
	if oldTs != "" {
		same, err := dirHolds(filepath.Join(dir, oldTs), payload)
		if err != nil {
			return false, err
		}
		if same {
			// Repair what a crash may have left half done.
			if err := linkTopLevel(dir, top); err != nil {
				return false, err
			}
			return false, removeStale(dir, oldTs, top)
		}
	}

	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format(tsDirLayout))
	if err != nil {
		return false, fmt.Errorf("create timestamped directory: %w", err)
	}
	// 0755 whatever the umask, so that any user can walk to the files.
	if err := os.Chmod(tsDir, 0o755); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, err
	}
	if err := writePayload(tsDir, payload); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, err
	}
	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmpLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = os.RemoveAll(tsDir)
		return false, err
	}
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("create %s: %w", tmpLink, err)
	}
	if err := os.Rename(tmpLink, dataLink); err != nil {
		_ = os.Remove(tmpLink)
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("switch %s: %w", dataLink, err)
	}
	if err := linkTopLevel(dir, top); err != nil {
		return true, err
	}
	return true, removeStale(dir, filepath.Base(tsDir), top)
}

func isTsDirName(name string) bool {
	return strings.HasPrefix(name, "..") && name != dataDirName && name != newDataDirName && !strings.Contains(name, "/")
}

func topLevelNames(payload map[string]FileProjection) map[string]bool {
	top := map[string]bool{}
	for p := range payload {
		first, _, _ := strings.Cut(p, "/")
		top[first] = true
	}
	return top
}

// dirHolds says whether the timestamped directory holds exactly payload,
// modes included.
func dirHolds(tsDir string, payload map[string]FileProjection) (bool, error) {
	seen := 0
	err := filepath.WalkDir(tsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(tsDir, p)
		if err != nil {
			return err
		}
		want, ok := payload[rel]
		if !ok || !d.Type().IsRegular() {
			return errDiffers
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != fs.FileMode(want.Mode)&fs.ModePerm || info.Size() != int64(len(want.Data)) {
			return errDiffers
		}
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want.Data) {
			return errDiffers
		}
		seen++
		return nil
	})
	switch {
	case errors.Is(err, errDiffers), errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("compare %s: %w", tsDir, err)
	}
	return seen == len(payload), nil
}

var errDiffers = errors.New("payload differs")

// writePayload writes the files with their modes, whatever the umask.
func writePayload(tsDir string, payload map[string]FileProjection) error {
	for p, f := range payload {
		full := filepath.Join(tsDir, p)
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			if err := os.MkdirAll(filepath.Join(tsDir, d), 0o755); err != nil {
				return err
			}
			if err := os.Chmod(filepath.Join(tsDir, d), 0o755); err != nil {
				return err
			}
		}
		mode := fs.FileMode(f.Mode) & fs.ModePerm
		if err := os.WriteFile(full, f.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Chmod(full, mode); err != nil {
			return err
		}
	}
	return nil
}

// linkTopLevel makes name -> ..data/name for every top-level name.
func linkTopLevel(dir string, top map[string]bool) error {
	for name := range top {
		p := filepath.Join(dir, name)
		target := filepath.Join(dataDirName, name)
		cur, err := os.Readlink(p)
		if err == nil && cur == target {
			continue
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			// Something else holds the name (a leftover of another
			// layout); a directory with content is not removed.
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("replace %s: %w", p, err)
			}
		}
		if err := os.Symlink(target, p); err != nil {
			return fmt.Errorf("link %s: %w", p, err)
		}
	}
	return nil
}

// removeStale removes the timestamped directories other than current and
// the top-level symlinks into ..data whose names left the payload.
func removeStale(dir, current string, top map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case name == dataDirName || name == current:
		case name == newDataDirName:
			errs = append(errs, os.Remove(p))
		case isTsDirName(name):
			errs = append(errs, os.RemoveAll(p))
		case !top[name] && e.Type()&fs.ModeSymlink != 0:
			if t, err := os.Readlink(p); err == nil && t == filepath.Join(dataDirName, name) {
				errs = append(errs, os.Remove(p))
			}
		}
	}
	return errors.Join(errs...)
}
