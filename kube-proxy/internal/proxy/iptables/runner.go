package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// Runner runs the iptables binaries. Prefix, when set, is prepended to every
// command (e.g. "ip netns exec <ns>" to program a network namespace).
type Runner struct {
	Prefix []string
	// Legacy selects the iptables-legacy binaries instead of the default
	// (nf_tables on Debian) ones.
	Legacy bool
}

func (r *Runner) binary(name string) string {
	if r.Legacy {
		return strings.Replace(name, "iptables", "iptables-legacy", 1)
	}
	return name
}

func (r *Runner) run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	argv := append(append(slices.Clone(r.Prefix), r.binary(name)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &ExecError{Args: argv, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return out, nil
}

// ExecError is a failed iptables command.
type ExecError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

func (e *ExecError) Unwrap() error { return e.Err }

// exitCode returns err's exit status, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Restore writes data (one or more "*table ... COMMIT" sections) with
// iptables-restore --noflush: only the chains declared in data are flushed.
func (r *Runner) Restore(ctx context.Context, data []byte) error {
	_, err := r.run(ctx, data, "iptables-restore", "-w", "--noflush")
	return err
}

// Save returns iptables-save of table.
func (r *Runner) Save(ctx context.Context, table string) ([]byte, error) {
	return r.run(ctx, nil, "iptables-save", "-t", table)
}

// EnsureChain creates chain in table if it does not exist.
func (r *Runner) EnsureChain(ctx context.Context, table, chain string) error {
	_, err := r.run(ctx, nil, "iptables", "-w", "-t", table, "-N", chain)
	if err != nil {
		var ee *ExecError
		if errors.As(err, &ee) && strings.Contains(ee.Stderr, "exists") {
			return nil
		}
	}
	return err
}

// EnsureRule inserts rule at the top of chain unless it is already there.
func (r *Runner) EnsureRule(ctx context.Context, table, chain string, rule ...string) error {
	_, err := r.run(ctx, nil, "iptables", append([]string{"-w", "-t", table, "-C", chain}, rule...)...)
	if err == nil {
		return nil
	}
	if exitCode(err) != 1 {
		return err
	}
	_, err = r.run(ctx, nil, "iptables", append([]string{"-w", "-t", table, "-I", chain, "1"}, rule...)...)
	return err
}

// DeleteRule deletes every copy of rule from chain; a missing rule or chain is not an error.
func (r *Runner) DeleteRule(ctx context.Context, table, chain string, rule ...string) error {
	for range 100 {
		if _, err := r.run(ctx, nil, "iptables", append([]string{"-w", "-t", table, "-D", chain}, rule...)...); err != nil {
			if exitCode(err) == 1 || exitCode(err) == 2 {
				return nil
			}
			return err
		}
	}
	return nil
}

// chainsIn returns the chain names declared in iptables-save output.
func chainsIn(save []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, ":") {
			continue
		}
		if name, _, ok := strings.Cut(line[1:], " "); ok {
			out = append(out, name)
		}
	}
	return out
}

// jumpRule is a rule in a built-in chain that sends traffic to ours.
type jumpRule struct {
	table, chain, target string
	args                 []string
}

func (j jumpRule) rule() []string { return append(slices.Clone(j.args), "-j", j.target) }

var jumpRules = []jumpRule{
	{TableFilter, "INPUT", ChainExternalServices, []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals"}},
	{TableFilter, "FORWARD", ChainExternalServices, []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals"}},
	{TableFilter, "FORWARD", ChainServices, []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals"}},
	{TableFilter, "OUTPUT", ChainServices, []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals"}},
	{TableFilter, "FORWARD", ChainForward, []string{"-m", "comment", "--comment", "kubernetes forwarding rules"}},
	{TableNAT, "PREROUTING", ChainServices, []string{"-m", "comment", "--comment", "kubernetes service portals"}},
	{TableNAT, "OUTPUT", ChainServices, []string{"-m", "comment", "--comment", "kubernetes service portals"}},
	{TableNAT, "POSTROUTING", ChainPostrouting, []string{"-m", "comment", "--comment", "kubernetes postrouting rules"}},
}

// EnsureJumps creates our top-level chains and the jumps to them from the built-in chains.
func EnsureJumps(ctx context.Context, r *Runner) error {
	for _, j := range jumpRules {
		if err := r.EnsureChain(ctx, j.table, j.target); err != nil {
			return fmt.Errorf("ensure chain %s/%s: %w", j.table, j.target, err)
		}
		if err := r.EnsureRule(ctx, j.table, j.chain, j.rule()...); err != nil {
			return fmt.Errorf("ensure jump %s/%s -> %s: %w", j.table, j.chain, j.target, err)
		}
	}
	return nil
}

// topChains are the fixed chains of each table.
var topChains = map[string][]string{
	TableNAT:    {ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq},
	TableFilter: {ChainServices, ChainExternalServices, ChainForward},
}

// Cleanup removes the jump rules and every chain the proxy owns, leaving
// other rules alone.
func Cleanup(ctx context.Context, r *Runner) error {
	var errs []error
	for _, j := range jumpRules {
		if err := r.DeleteRule(ctx, j.table, j.chain, j.rule()...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, t := range []string{TableNAT, TableFilter} {
		save, err := r.Save(ctx, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var ours []string
		for _, c := range chainsIn(save) {
			if isOwnedChain(c) || slices.Contains(topChains[t], c) {
				ours = append(ours, c)
			}
		}
		if len(ours) == 0 {
			continue
		}
		var b bytes.Buffer
		b.WriteString("*" + t + "\n")
		for _, c := range ours {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		for _, c := range ours {
			b.WriteString("-X " + c + "\n")
		}
		b.WriteString("COMMIT\n")
		if err := r.Restore(ctx, b.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("delete %s chains: %w", t, err))
		}
	}
	return errors.Join(errs...)
}
