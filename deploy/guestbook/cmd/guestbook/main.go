// Command guestbook is the demo's web frontend. It finds redis through the
// Service environment variables Kubernetes injects (REDIS_MASTER_SERVICE_HOST,
// REDIS_REPLICA_SERVICE_HOST) or through DNS names.
package main

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coxswain/coxswain/deploy/guestbook"
)

func addr(hostEnv, portEnv, dnsName string) string {
	host, port := os.Getenv(hostEnv), os.Getenv(portEnv)
	if host == "" {
		host = dnsName
	}
	if port == "" {
		port = "6379"
	}
	return net.JoinHostPort(host, port)
}

func main() {
	listen := ":8080"
	if v := os.Getenv("LISTEN"); v != "" {
		listen = v
	}
	s := &guestbook.Server{
		Master:  guestbook.Redis{Addr: addr("REDIS_MASTER_SERVICE_HOST", "REDIS_MASTER_SERVICE_PORT", "redis-master")},
		Replica: guestbook.Redis{Addr: addr("REDIS_REPLICA_SERVICE_HOST", "REDIS_REPLICA_SERVICE_PORT", "redis-replica")},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: listen, Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("guestbook listening on %s (master %s, replica %s)", listen, s.Master.Addr, s.Replica.Addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
