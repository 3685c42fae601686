package pki

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func servingCert(t *testing.T, b *Bundle) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(b.Serving.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestEnsureCreatesFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	b, err := Ensure(dir, Options{Hosts: []string{"10.96.0.1", "0.0.0.0", "", "node1.example.com"}})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode().Perm(), os.FileMode(0o700); got != want {
		t.Errorf("dir mode = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		file string
		mode os.FileMode
	}{
		{CACertFile, 0o644},
		{CAKeyFile, 0o600},
		{ServingCertFile, 0o644},
		{ServingKeyFile, 0o600},
	} {
		st, err := os.Stat(filepath.Join(dir, tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if got := st.Mode().Perm(); got != tc.mode {
			t.Errorf("%s mode = %v, want %v", tc.file, got, tc.mode)
		}
	}

	if got, want := b.CACert.Subject.CommonName, CACommonName; got != want {
		t.Errorf("CA CN = %q, want %q", got, want)
	}
	if !b.CACert.IsCA {
		t.Errorf("CA IsCA = false, want true")
	}
	if got, want := b.CACert.NotAfter.Sub(b.CACert.NotBefore), CAValidity+backdate; got != want {
		t.Errorf("CA validity = %v, want %v", got, want)
	}
	if !bytes.Equal(b.CAPEM, readFile(t, filepath.Join(dir, CACertFile))) {
		t.Errorf("CAPEM differs from ca.crt")
	}

	cert := servingCert(t, b)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: b.Pool, DNSName: "kubernetes.default.svc", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serving cert does not verify against the CA: %v", err)
	}
	if got, want := len(b.Serving.Certificate), 2; got != want {
		t.Errorf("serving chain length = %d, want %d (leaf, CA)", got, want)
	}
	var gotIPs []string
	for _, ip := range cert.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	slices.Sort(gotIPs)
	if want := []string{"10.96.0.1", "127.0.0.1", "::1"}; !slices.Equal(gotIPs, want) {
		t.Errorf("serving IP SANs = %v, want %v", gotIPs, want)
	}
	gotDNS := slices.Sorted(slices.Values(cert.DNSNames))
	wantDNS := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", "node1.example.com"}
	if !slices.Equal(gotDNS, wantDNS) {
		t.Errorf("serving DNS SANs = %v, want %v", gotDNS, wantDNS)
	}
}

func TestEnsureIdempotentAndRegeneration(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name        string
		firstHosts  []string
		firstNow    time.Time
		secondHosts []string
		prepare     func(t *testing.T, dir string)
		wantNewCert bool
	}{
		{name: "same hosts keep everything", firstHosts: []string{"10.96.0.1"}, secondHosts: []string{"10.96.0.1"}},
		{name: "subset of hosts keeps everything", firstHosts: []string{"10.96.0.1", "192.168.1.5"}, secondHosts: []string{"192.168.1.5"}},
		{name: "defaults spelled out keep everything", firstHosts: nil, secondHosts: []string{"LOCALHOST", "127.0.0.1", "0.0.0.0"}},
		{name: "missing IP SAN regenerates", firstHosts: []string{"10.96.0.1"}, secondHosts: []string{"10.96.0.1", "192.168.1.5"}, wantNewCert: true},
		{name: "missing DNS SAN regenerates", firstHosts: nil, secondHosts: []string{"master.example.com"}, wantNewCert: true},
		{name: "expiring within 30 days regenerates", firstNow: now.Add(-340 * 24 * time.Hour), wantNewCert: true},
		{name: "expiring in 60 days is kept", firstNow: now.Add(-300 * 24 * time.Hour)},
		{
			name: "unparsable serving cert regenerates", wantNewCert: true,
			prepare: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, ServingCertFile), []byte("garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "missing serving key regenerates", wantNewCert: true,
			prepare: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, ServingKeyFile)); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Hosts: tc.firstHosts}
			if !tc.firstNow.IsZero() {
				opts.Now = func() time.Time { return tc.firstNow }
			}
			b1, err := Ensure(dir, opts)
			if err != nil {
				t.Fatalf("first Ensure: %v", err)
			}
			ca1 := readFile(t, filepath.Join(dir, CACertFile))
			caKey1 := readFile(t, filepath.Join(dir, CAKeyFile))
			crt1 := readFile(t, filepath.Join(dir, ServingCertFile))
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}

			b2, err := Ensure(dir, Options{Hosts: tc.secondHosts})
			if err != nil {
				t.Fatalf("second Ensure: %v", err)
			}
			if got := readFile(t, filepath.Join(dir, CACertFile)); !bytes.Equal(got, ca1) {
				t.Errorf("ca.crt changed across Ensure")
			}
			if got := readFile(t, filepath.Join(dir, CAKeyFile)); !bytes.Equal(got, caKey1) {
				t.Errorf("ca.key changed across Ensure")
			}
			if !b1.CACert.Equal(b2.CACert) {
				t.Errorf("Bundle CA changed across Ensure")
			}
			crt2 := readFile(t, filepath.Join(dir, ServingCertFile))
			if got := !bytes.Equal(crt1, crt2); got != tc.wantNewCert {
				t.Errorf("serving cert regenerated = %v, want %v", got, tc.wantNewCert)
			}
			if !bytes.Equal(crt2, b2.ServingCertPEM) {
				t.Errorf("Bundle serving cert differs from apiserver.crt")
			}
			cert := servingCert(t, b2)
			for _, h := range tc.secondHosts {
				if h == "0.0.0.0" {
					continue
				}
				if err := cert.VerifyHostname(h); err != nil {
					t.Errorf("serving cert lacks %q: %v", h, err)
				}
			}
			if time.Until(cert.NotAfter) < RenewBefore {
				t.Errorf("serving cert expires %v, within the renewal margin", cert.NotAfter)
			}
		})
	}
}

func TestEnsureCAErrors(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
	}{
		{"key without cert", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"cert without key", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"unparsable cert", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, CACertFile), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"key of another CA", func(t *testing.T, dir string) {
			other := t.TempDir()
			if _, err := Ensure(other, Options{}); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, CAKeyFile), readFile(t, filepath.Join(other, CAKeyFile)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Ensure(dir, Options{}); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, dir)
			if _, err := Ensure(dir, Options{}); err == nil {
				t.Errorf("Ensure = nil error, want an error (the CA must never be silently replaced)")
			}
		})
	}
}

func TestIssueClient(t *testing.T) {
	past := time.Now().Add(-9*365*24*time.Hour - 300*24*time.Hour)
	tests := []struct {
		name         string
		now          func() time.Time
		cn           string
		groups       []string
		validity     time.Duration
		wantValidity time.Duration
		wantErr      bool
	}{
		{name: "admin", cn: "admin", groups: []string{"system:masters"}, validity: time.Hour, wantValidity: time.Hour},
		{name: "default validity", cn: "u", wantValidity: ClientValidity},
		{name: "empty CN", cn: "", wantErr: true},
		{name: "capped at CA expiry", now: func() time.Time { return past }, cn: "u", validity: 2 * ClientValidity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Ensure(t.TempDir(), Options{Now: tc.now})
			if err != nil {
				t.Fatal(err)
			}
			certPEM, keyPEM, err := b.IssueClient(tc.cn, tc.groups, tc.validity)
			if (err != nil) != tc.wantErr {
				t.Fatalf("IssueClient error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if len(keyPEM) == 0 {
				t.Errorf("IssueClient returned no key")
			}
			cert, err := parseCertPEM(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			if got := cert.Subject.CommonName; got != tc.cn {
				t.Errorf("CN = %q, want %q", got, tc.cn)
			}
			if got := cert.Subject.Organization; !slices.Equal(got, tc.groups) {
				t.Errorf("O = %v, want %v", got, tc.groups)
			}
			if got, want := cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}; !slices.Equal(got, want) {
				t.Errorf("ExtKeyUsage = %v, want %v", got, want)
			}
			if cert.NotAfter.After(b.CACert.NotAfter) {
				t.Errorf("client cert NotAfter %v outlives the CA %v", cert.NotAfter, b.CACert.NotAfter)
			}
			if tc.wantValidity != 0 {
				if got := cert.NotAfter.Sub(cert.NotBefore) - backdate; got.Round(time.Second) != tc.wantValidity {
					t.Errorf("validity = %v, want %v", got, tc.wantValidity)
				}
			}
		})
	}
}

func TestLoadCA(t *testing.T) {
	dir := t.TempDir()
	b, err := Ensure(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		wantErr bool
	}{
		{"ca.crt", filepath.Join(dir, CACertFile), false},
		{"missing", filepath.Join(dir, "nope"), true},
		{"not PEM", garbage, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := LoadCA(tc.file)
			if (err != nil) != tc.wantErr {
				t.Fatalf("LoadCA error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !pool.Equal(b.Pool) {
				t.Errorf("LoadCA pool differs from the bundle's")
			}
		})
	}
}

func TestFirstServiceIP(t *testing.T) {
	tests := []struct {
		cidr    string
		want    string
		wantErr bool
	}{
		{cidr: "10.96.0.0/12", want: "10.96.0.1"},
		{cidr: "10.0.0.0/24", want: "10.0.0.1"},
		{cidr: "fd00:10:96::/112", want: "fd00:10:96::1"},
		{cidr: "10.0.0.0/32", wantErr: true},
		{cidr: "bogus", wantErr: true},
	}
	for _, tc := range tests {
		got, err := FirstServiceIP(tc.cidr)
		if (err != nil) != tc.wantErr {
			t.Errorf("FirstServiceIP(%q) error = %v, want error %v", tc.cidr, err, tc.wantErr)
			continue
		}
		if err == nil && !got.Equal(net.ParseIP(tc.want)) {
			t.Errorf("FirstServiceIP(%q) = %v, want %v", tc.cidr, got, tc.want)
		}
	}
}
