package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/coxswain/coxswain/kube-proxy/internal/nsexec"
)

// Runner runs the iptables binaries, in the network namespace at NetNS
// when it is set (a "node" that is a namespace: tests, the benchmark).
type Runner struct {
	// NetNS is the file of the network namespace to program (e.g.
	// /run/netns/NAME); empty means the process's own.
	NetNS string
	// Legacy selects the iptables-legacy binaries instead of the default
	// (nf_tables on Debian) ones.
	Legacy bool
	// Flush makes Restore replace the whole of each table it writes
	// (iptables-restore without --noflush), the jump rules in the built-in
	// chains included. Only for a private namespace whose tables nobody
	// else uses: the benchmark sets it to load a large ruleset where
	// iptables-nft's --noflush restore takes too long, never kube-proxy.
	Flush bool

	once sync.Once
	ipt  *goipt.IPTables
	err  error
}

func (r *Runner) binary(name string) string {
	if r.Legacy {
		return strings.Replace(name, "iptables", "iptables-legacy", 1)
	}
	return name
}

func (r *Runner) run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	argv := append([]string{r.binary(name)}, args...)
	var out []byte
	var stderr bytes.Buffer
	err := nsexec.Do(r.NetNS, func() error {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdin = stdin
		cmd.Stderr = &stderr
		var err error
		out, err = cmd.Output()
		return err
	})
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

// Restore writes data (one or more "*table ... COMMIT" sections) with
// iptables-restore --noflush: only the chains declared in data are flushed.
func (r *Runner) Restore(ctx context.Context, data []byte) error {
	return r.RestoreFrom(ctx, bytes.NewReader(data))
}

// RestoreFrom is Restore of what it reads from in (until io.EOF), which
// iptables-restore parses as it comes.
func (r *Runner) RestoreFrom(ctx context.Context, in io.Reader) error {
	args := []string{"-w", "--noflush"}
	if r.Flush {
		args = args[:1]
	}
	_, err := r.run(ctx, in, "iptables-restore", args...)
	return err
}

// Save returns iptables-save of table ("" for every table).
func (r *Runner) Save(ctx context.Context, table string) ([]byte, error) {
	if table == "" {
		return r.run(ctx, nil, "iptables-save")
	}
	return r.run(ctx, nil, "iptables-save", "-t", table)
}

// savedTables is iptables-save output, parsed: chains and rule lines per table.
type savedTables struct {
	chains map[string][]string
	rules  map[string]map[string]bool
}

func parseSave(save []byte) *savedTables {
	st := &savedTables{chains: map[string][]string{}, rules: map[string]map[string]bool{}}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			st.rules[table] = map[string]bool{}
		case strings.HasPrefix(line, ":"):
			if name, _, ok := strings.Cut(line[1:], " "); ok {
				st.chains[table] = append(st.chains[table], name)
			}
		case strings.HasPrefix(line, "-A ") && table != "":
			st.rules[table][line] = true
		}
	}
	return st
}

// saveLine is the rule as iptables-save prints it.
func (j jumpRule) saveLine() string {
	args := slices.Clone(j.args)
	for i := range args {
		if i > 0 && args[i-1] == "--comment" {
			args[i] = comment(args[i])
		}
	}
	return "-A " + j.chain + " " + strings.Join(args, " ") + " -j " + j.target
}

// ensureJumps makes the jump rules (and their target chains) that are
// missing with go-iptables. saved, the tables as read at this (re)start (nil
// if they were not), spares the checks of what it shows: a jump printed
// there exists; a jump to a chain that did not exist does not.
func ensureJumps(ctx context.Context, r *Runner, saved *savedTables) error {
	if saved == nil {
		_, err := EnsureJumps(ctx, r)
		return err
	}
	ipt, err := r.goIPTables()
	if err != nil {
		return err
	}
	return nsexec.Do(r.NetNS, func() error {
		made := map[chainRef]bool{}
		for _, j := range jumpRules {
			if err := ctx.Err(); err != nil {
				return err
			}
			if saved.rules[j.table][j.saveLine()] {
				continue
			}
			target := chainRef{j.table, j.target}
			exists := made[target] || slices.Contains(saved.chains[j.table], j.target)
			if !exists {
				if err := ipt.NewChain(j.table, j.target); err != nil && !isExists(err) {
					return fmt.Errorf("create chain %s/%s: %w", j.table, j.target, err)
				}
				made[target] = true
			} else {
				// Not printed as expected: check the rule itself (another
				// iptables version may print it otherwise) before adding it.
				ok, err := ipt.Exists(j.table, j.chain, j.rule()...)
				if err != nil {
					return fmt.Errorf("check jump %s/%s -> %s: %w", j.table, j.chain, j.target, err)
				}
				if ok {
					continue
				}
			}
			if err := ipt.Insert(j.table, j.chain, 1, j.rule()...); err != nil {
				return fmt.Errorf("insert jump %s/%s -> %s: %w", j.table, j.chain, j.target, err)
			}
		}
		return nil
	})
}

// goIPTables returns the go-iptables handle of the runner's binary.
func (r *Runner) goIPTables() (*goipt.IPTables, error) {
	r.once.Do(func() {
		r.ipt, r.err = goipt.New(goipt.Path(r.binary("iptables")), goipt.Timeout(5))
		if r.err != nil {
			r.err = fmt.Errorf("go-iptables: %w", r.err)
		}
	})
	return r.ipt, r.err
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

// EnsureJumps creates our top-level chains and, with go-iptables, the jumps
// to them from the built-in chains (inserted first, as upstream does). It
// returns how many chains or rules were missing and have been made.
func EnsureJumps(ctx context.Context, r *Runner) (int, error) {
	ipt, err := r.goIPTables()
	if err != nil {
		return 0, err
	}
	made := 0
	err = nsexec.Do(r.NetNS, func() error {
		for _, j := range jumpRules {
			if err := ctx.Err(); err != nil {
				return err
			}
			ok, err := ipt.ChainExists(j.table, j.target)
			if err != nil {
				return fmt.Errorf("look up chain %s/%s: %w", j.table, j.target, err)
			}
			if !ok {
				if err := ipt.NewChain(j.table, j.target); err != nil && !isExists(err) {
					return fmt.Errorf("create chain %s/%s: %w", j.table, j.target, err)
				}
				made++
			}
			ok, err = ipt.Exists(j.table, j.chain, j.rule()...)
			if err != nil {
				return fmt.Errorf("check jump %s/%s -> %s: %w", j.table, j.chain, j.target, err)
			}
			if !ok {
				if err := ipt.Insert(j.table, j.chain, 1, j.rule()...); err != nil {
					return fmt.Errorf("insert jump %s/%s -> %s: %w", j.table, j.chain, j.target, err)
				}
				made++
			}
		}
		return nil
	})
	return made, err
}

func isExists(err error) bool {
	var e *goipt.Error
	return errors.As(err, &e) && strings.Contains(e.Error(), "exists")
}

// topChains are the fixed chains of each table.
var topChains = map[string][]string{
	TableNAT:    {ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq},
	TableFilter: {ChainServices, ChainExternalServices, ChainForward},
}

// Cleanup removes the jump rules (with go-iptables) and every chain the
// proxy owns, leaving other rules alone.
func Cleanup(ctx context.Context, r *Runner) error {
	var errs []error
	ipt, err := r.goIPTables()
	if err != nil {
		return err
	}
	err = nsexec.Do(r.NetNS, func() error {
		var errs []error
		for _, j := range jumpRules {
			if err := ipt.DeleteIfExists(j.table, j.chain, j.rule()...); err != nil && !notFound(err) {
				errs = append(errs, fmt.Errorf("delete jump %s/%s -> %s: %w", j.table, j.chain, j.target, err))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		errs = append(errs, err)
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

// notFound says whether a go-iptables error is about a chain that does not exist.
func notFound(err error) bool {
	var e *goipt.Error
	return errors.As(err, &e) && e.IsNotExist()
}
