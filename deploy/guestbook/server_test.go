package guestbook

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeRedis is a RESP server on loopback holding one list, enough for the
// guestbook's RPUSH and LRANGE.
type fakeRedis struct {
	ln   net.Listener
	mu   sync.Mutex
	list []string
	wg   sync.WaitGroup
}

func startFakeRedis(t *testing.T) *fakeRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() { defer f.wg.Done(); f.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeRedis) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "*") {
		return
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	args := make([]string, 0, n)
	for i := 0; i < n; i++ {
		hdr, _ := br.ReadString('\n')
		l, _ := strconv.Atoi(strings.TrimSpace(hdr[1:]))
		buf := make([]byte, l+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		args = append(args, string(buf[:l]))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch strings.ToUpper(args[0]) {
	case "RPUSH":
		f.list = append(f.list, args[2:]...)
		fmt.Fprintf(c, ":%d\r\n", len(f.list))
	case "LRANGE":
		fmt.Fprintf(c, "*%d\r\n", len(f.list))
		for _, v := range f.list {
			fmt.Fprintf(c, "$%d\r\n%s\r\n", len(v), v)
		}
	default:
		fmt.Fprintf(c, "-ERR unknown command '%s'\r\n", args[0])
	}
}

func TestGuestbook(t *testing.T) {
	master := startFakeRedis(t)
	s := &Server{Master: Redis{Addr: master.ln.Addr().String()}, Replica: Redis{Addr: "127.0.0.1:1"}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, v := range []string{"hello", "world <b>"} {
		resp, err := http.PostForm(srv.URL+"/rpush", url.Values{"value": {v}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("rpush %q: %d", v, resp.StatusCode)
		}
	}
	// The replica is down: reads fall back to the master.
	resp, err := http.Get(srv.URL + "/get")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got) != 2 || got[0] != "hello" || got[1] != "world <b>" {
		t.Fatalf("/get = %q, want [hello, world <b>]", got)
	}
	resp, err = http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "world &lt;b&gt;") {
		t.Fatalf("page does not show the escaped entry:\n%s", page)
	}
	if resp, err := http.PostForm(srv.URL+"/rpush", url.Values{}); err != nil || resp.StatusCode != 400 {
		t.Fatalf("rpush without value: %v %v", resp, err)
	}
	if _, err := (Redis{Addr: master.ln.Addr().String()}).Do(context.Background(), "FLUSHALL"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("redis error reply: %v", err)
	}
}
