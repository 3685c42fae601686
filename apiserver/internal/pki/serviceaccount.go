package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Service-account key files under the pki directory, kubeadm's names.
const (
	ServiceAccountKeyFile    = "sa.key"
	ServiceAccountPubKeyFile = "sa.pub"
)

// EnsureServiceAccountKey loads dir/sa.key, or creates it (ECDSA P-256)
// with its public key in dir/sa.pub when absent. The key is kept across
// restarts so that tokens issued earlier stay valid.
func EnsureServiceAccountKey(dir string) (crypto.Signer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", dir, err)
	}
	keyPath := filepath.Join(dir, ServiceAccountKeyFile)
	raw, err := os.ReadFile(keyPath)
	switch {
	case err == nil:
		key, err := parseKeyPEM(raw)
		if err != nil {
			return nil, fmt.Errorf("pki: load %s: %w", keyPath, err)
		}
		if err := writePublicKey(filepath.Join(dir, ServiceAccountPubKeyFile), key.Public()); err != nil {
			return nil, err
		}
		return key, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("pki: read %s: %w", keyPath, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate service account key: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writePublicKey(filepath.Join(dir, ServiceAccountPubKeyFile), key.Public()); err != nil {
		return nil, err
	}
	return key, nil
}

func writePublicKey(path string, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("pki: encode public key: %w", err)
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

// LoadSigningKey reads a PEM private key (EC, PKCS#1 RSA or PKCS#8), as
// --service-account-signing-key-file takes.
func LoadSigningKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	key, err := parseKeyPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("pki: load %s: %w", path, err)
	}
	switch key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
		return key, nil
	}
	return nil, fmt.Errorf("pki: %s: unsupported key type %T (want RSA or ECDSA)", path, key)
}

// LoadPublicKeys reads every public key of a PEM file, as
// --service-account-key-file takes: public keys, RSA public keys,
// certificates, and private keys (whose public half is used).
func LoadPublicKeys(path string) ([]crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			break
		}
		var pub crypto.PublicKey
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		case "EC PRIVATE KEY", "RSA PRIVATE KEY", "PRIVATE KEY":
			var key crypto.Signer
			if key, err = parseKeyPEM(pem.EncodeToMemory(block)); err == nil {
				pub = key.Public()
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pki: %s: parse %s: %w", path, block.Type, err)
		}
		switch pub.(type) {
		case *ecdsa.PublicKey, *rsa.PublicKey:
			keys = append(keys, pub)
		default:
			return nil, fmt.Errorf("pki: %s: unsupported key type %T (want RSA or ECDSA)", path, pub)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("pki: %s holds no public key", path)
	}
	return keys, nil
}
