// Package server is the kubelet API on 10250: HTTPS with a self-signed
// serving certificate (as upstream's kubelet makes when none is given),
// accepting only client certificates of the cluster CA. It serves container
// logs to the apiserver, which routes pods/log here.
package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Listen opens the kubelet API's TLS listener on addr.
func Listen(addr, nodeName string, ips []net.IP, clientCAs *x509.CertPool) (net.Listener, error) {
	cert, err := selfSigned(nodeName, ips)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kubelet API listen: %w", err)
	}
	return tls.NewListener(lis, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		NextProtos:   []string{"h2", "http/1.1"},
	}), nil
}

func selfSigned(nodeName string, ips []net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeName + "@" + strconv.FormatInt(time.Now().Unix(), 10)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{nodeName},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Handler serves /containerLogs/<namespace>/<pod>/<container> from the CRI
// log files under logDir, with the query parameters of upstream's kubelet:
// follow, previous, timestamps, tailLines, limitBytes, sinceSeconds.
func Handler(logDir string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/containerLogs/", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/"), "/")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			http.Error(w, "want /containerLogs/<namespace>/<pod>/<container>", http.StatusBadRequest)
			return
		}
		if err := serveLogs(r.Context(), w, r, logDir, parts[0], parts[1], parts[2]); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
		}
	})
	return mux
}

// logFile finds the log of the container's latest run (or the one before
// it, for previous) of the newest pod of that name.
func logFile(logDir, ns, pod, container string, previous bool) (string, error) {
	pods, _ := filepath.Glob(filepath.Join(logDir, ns+"_"+pod+"_*"))
	var newest string
	var newestTime time.Time
	for _, p := range pods {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(newestTime) {
			newest, newestTime = p, st.ModTime()
		}
	}
	if newest == "" {
		return "", fmt.Errorf("no logs of pod %s/%s on this node", ns, pod)
	}
	runs, _ := filepath.Glob(filepath.Join(newest, container, "*.log"))
	var n []int
	for _, r := range runs {
		if i, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(r), ".log")); err == nil {
			n = append(n, i)
		}
	}
	sort.Ints(n)
	idx := len(n) - 1
	if previous {
		idx--
	}
	if idx < 0 {
		if previous {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, pod)
		}
		return "", fmt.Errorf("container %q in pod %q has no logs", container, pod)
	}
	return filepath.Join(newest, container, strconv.Itoa(n[idx])+".log"), nil
}

// entry is one parsed CRI log line.
type entry struct {
	ts      time.Time
	content []byte
	partial bool
}

func parse(line []byte) (entry, bool) {
	f := bytes.SplitN(line, []byte(" "), 4)
	if len(f) < 3 {
		return entry{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(f[0]))
	if err != nil {
		return entry{}, false
	}
	e := entry{ts: ts, partial: string(f[2]) == "P"}
	if len(f) == 4 {
		e.content = f[3]
	}
	return e, true
}

func serveLogs(ctx context.Context, w http.ResponseWriter, r *http.Request, logDir, ns, pod, container string) error {
	q := r.URL.Query()
	flag := func(k string) bool { v, _ := strconv.ParseBool(q.Get(k)); return v }
	path, err := logFile(logDir, ns, pod, container, flag("previous"))
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tail := -1
	if v := q.Get("tailLines"); v != "" {
		if tail, err = strconv.Atoi(v); err != nil || tail < 0 {
			return fmt.Errorf("invalid tailLines %q", v)
		}
	}
	limit := int64(-1)
	if v := q.Get("limitBytes"); v != "" {
		if limit, err = strconv.ParseInt(v, 10, 64); err != nil || limit <= 0 {
			return fmt.Errorf("invalid limitBytes %q", v)
		}
	}
	var since time.Time
	if v := q.Get("sinceSeconds"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil || s <= 0 {
			return fmt.Errorf("invalid sinceSeconds %q", v)
		}
		since = time.Now().Add(-time.Duration(s) * time.Second)
	}
	timestamps := flag("timestamps")
	format := func(e entry) []byte {
		out := e.content
		if !e.partial {
			out = append(out[:len(out):len(out)], '\n')
		}
		if timestamps {
			out = append([]byte(e.ts.Format(time.RFC3339Nano)+" "), out...)
		}
		return out
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	var written int64
	emit := func(b []byte) bool {
		if limit >= 0 && written+int64(len(b)) > limit {
			b = b[:limit-written]
		}
		n, err := w.Write(b)
		written += int64(n)
		return err == nil && (limit < 0 || written < limit)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var lines [][]byte
	var pending []byte
	readAll := func() {
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				line = append(pending, line[:len(line)-1]...)
				pending = nil
				if e, ok := parse(line); ok && !e.ts.Before(since) {
					lines = append(lines, format(e))
				}
			} else if len(line) > 0 {
				pending = append(pending, line...)
			}
			if err != nil {
				return
			}
		}
	}
	readAll()
	if tail >= 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if !emit(l) {
			return nil
		}
	}
	lines = nil
	if !flag("follow") {
		return nil
	}
	flusher, _ := w.(http.Flusher)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		readAll()
		for _, l := range lines {
			if !emit(l) {
				return nil
			}
		}
		lines = nil
	}
}
