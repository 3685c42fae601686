package pki

import (
	"os"
	"path/filepath"
	"testing"
)

// The service-account key is created once and kept; sa.pub, the key file
// itself and the CA certificate all load as verification keys.
func TestEnsureServiceAccountKey(t *testing.T) {
	dir := t.TempDir()
	key, err := EnsureServiceAccountKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureServiceAccountKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(key.Public(), again.Public()) {
		t.Fatal("second EnsureServiceAccountKey made a new key, want the kept one")
	}
	st, err := os.Stat(filepath.Join(dir, ServiceAccountKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("sa.key mode = %v, want 0600", st.Mode().Perm())
	}
	for _, f := range []string{ServiceAccountPubKeyFile, ServiceAccountKeyFile} {
		keys, err := LoadPublicKeys(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("LoadPublicKeys(%s): %v", f, err)
		}
		if len(keys) != 1 || !publicKeysEqual(keys[0], key.Public()) {
			t.Errorf("LoadPublicKeys(%s) = %d keys, want the service-account key", f, len(keys))
		}
	}
	signer, err := LoadSigningKey(filepath.Join(dir, ServiceAccountKeyFile))
	if err != nil || !publicKeysEqual(signer.Public(), key.Public()) {
		t.Errorf("LoadSigningKey = %v, want the service-account key", err)
	}
	if _, err := LoadPublicKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadPublicKeys(missing) succeeded, want an error")
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("nothing"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPublicKeys(empty); err == nil {
		t.Error("LoadPublicKeys(no PEM) succeeded, want an error")
	}
}
