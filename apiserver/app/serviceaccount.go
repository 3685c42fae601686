package app

import (
	"crypto"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/apiserver/internal/pki"
	"github.com/coxswain/coxswain/apiserver/internal/registry"
	"github.com/coxswain/coxswain/apiserver/internal/serviceaccount"
)

// serviceAccountTokens loads (or creates) the service-account signing key
// and returns the serviceaccounts/token issuer and the bearer-token
// authenticator.
func (o *Options) serviceAccountTokens(reg *registry.Registry) (*serviceaccount.Issuer, *serviceaccount.Authenticator, error) {
	var key crypto.Signer
	var err error
	if o.ServiceAccountSigningKeyFile != "" {
		key, err = pki.LoadSigningKey(o.ServiceAccountSigningKeyFile)
	} else {
		key, err = pki.EnsureServiceAccountKey(filepath.Join(o.DataDir, "pki"))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("service-account signing key: %w", err)
	}
	signer, err := serviceaccount.NewSigner(key)
	if err != nil {
		return nil, nil, fmt.Errorf("service-account signing key: %w", err)
	}
	keys := []crypto.PublicKey{key.Public()}
	for _, f := range o.ServiceAccountKeyFiles {
		more, err := pki.LoadPublicKeys(f)
		if err != nil {
			return nil, nil, fmt.Errorf("--service-account-key-file: %w", err)
		}
		keys = append(keys, more...)
	}
	audiences := o.APIAudiences
	if len(audiences) == 0 {
		audiences = o.ServiceAccountIssuers
	}
	verifier, err := serviceaccount.NewVerifier(keys, o.ServiceAccountIssuers, audiences, nil)
	if err != nil {
		return nil, nil, err
	}
	objects := serviceaccount.Objects{
		ServiceAccounts: reg.MustStore(corev1.SchemeGroupVersion.WithResource("serviceaccounts")),
		Pods:            reg.MustStore(corev1.SchemeGroupVersion.WithResource("pods")),
		Secrets:         reg.MustStore(corev1.SchemeGroupVersion.WithResource("secrets")),
		Nodes:           reg.MustStore(corev1.SchemeGroupVersion.WithResource("nodes")),
	}
	issuer := &serviceaccount.Issuer{Signer: signer, Issuer: o.ServiceAccountIssuers[0], Objects: objects, Audiences: audiences}
	return issuer, &serviceaccount.Authenticator{Verifier: verifier, Objects: objects}, nil
}
