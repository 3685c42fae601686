package benchkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Binary returns the component binary to benchmark: prebuilt (what `make
// build` left in _output/bin) when it exists, else built from pkg (an
// import path) into dir. The description says which, for the report.
func Binary(ctx context.Context, prebuilt, pkg, dir string, logf func(string, ...any)) (path, description string, err error) {
	if _, err := os.Stat(prebuilt); err == nil {
		return prebuilt, "`" + prebuilt + "`", nil
	}
	path = filepath.Join(dir, filepath.Base(pkg))
	logf("building %s", pkg)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", path, pkg).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return path, "built from the working tree by the benchmark", nil
}

// Process is a component the benchmark runs, its output in a log file.
type Process struct {
	Name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// StartProcess starts bin with args, logging to logPath. The process dies
// with the benchmark (Pdeathsig) even if the benchmark is killed.
func StartProcess(name, bin, logPath string, args ...string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer func() { _ = logFile.Close() }() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &Process{Name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is where its output goes.
func (p *Process) LogPath() string { return p.logPath }

// Alive reports an error, with the log's tail, once the process exited.
func (p *Process) Alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v):\n%s", p.Name, p.waitErr, p.LogTail())
	default:
		return nil
	}
}

// LogTail is the last 30 lines of the log.
func (p *Process) LogTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM, then SIGKILL after grace, to this process only, and
// waits for it to exit.
func (p *Process) Stop(grace time.Duration, logf func(string, ...any)) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		logf("%s pid %d did not stop on SIGTERM; killing it", p.Name, p.PID())
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
