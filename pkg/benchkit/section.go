package benchkit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// fileHeader starts a new docs/benchmarks.md.
const fileHeader = "# Coxswain benchmarks\n\n" +
	"`make bench` runs each component's benchmark; each writes its own section below\n" +
	"(between its `begin`/`end` markers) and leaves the others as they were, so each\n" +
	"section carries its own machine and date.\n"

// WriteSection replaces the section name of the Markdown file at path with
// body, or appends it when the file has no such section (creating the
// file when missing). Sections are delimited by HTML comments, so they do
// not show when the file is rendered.
func WriteSection(path, name, body string) error {
	begin, end := "<!-- begin: "+name+" -->\n", "<!-- end: "+name+" -->\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	doc := string(old)
	if doc == "" {
		doc = fileHeader
	}
	section := begin + strings.TrimRight(body, "\n") + "\n" + end
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	switch {
	case i >= 0 && j > i:
		doc = doc[:i] + section + doc[j+len(end):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("%s: section %q has only one of its markers; fix the file by hand", path, name)
	default:
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
