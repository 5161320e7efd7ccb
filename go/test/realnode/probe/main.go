// Command probe is the real node's NetworkPolicy test pod (//go/test/realnode:networkpolicy_test):
// labelled as one of Tally's workloads, it listens where that workload listens and, asked over
// HTTP, connects where that workload connects, reporting whether the connection was made.
//
//	probe -listen 6379,27017 -control 9999
//	GET /dial?protocol=TCP&address=10.244.0.7:6379  -> 200 "connected" or 200 "failed: ..."
//	GET /dial?protocol=UDP&address=10.96.0.10:53    -> a DNS query: "connected" when it is answered
//
// A TCP listener answers "probe" and closes, so a connection counts only when it reached a probe
// (or, for port 53, a DNS server). Its log line for each dial is what `kubectl logs` shows.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "", "comma-separated TCP ports to accept connections on")
	control := flag.String("control", ":9999", "the HTTP address the test asks for connections on")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	for _, port := range strings.Split(*listen, ",") {
		if port == "" {
			continue
		}
		ln, err := net.Listen("tcp", ":"+port)
		if err != nil {
			log.Error("listen", "port", port, "err", err)
			os.Exit(1)
		}
		go accept(ln)
	}
	http.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		protocol, address := r.URL.Query().Get("protocol"), r.URL.Query().Get("address")
		err := dial(r.Context(), protocol, address)
		log.Info("dial", "protocol", protocol, "address", address, "err", err)
		if err != nil {
			fmt.Fprintf(w, "failed: %v", err)
			return
		}
		fmt.Fprint(w, "connected")
	})
	log.Info("probe ready", "listen", *listen, "control", *control)
	if err := http.ListenAndServe(*control, nil); err != nil {
		log.Error("control", "err", err)
		os.Exit(1)
	}
}

func accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(conn, "probe")
		conn.Close()
	}
}

// timeout bounds one connection: a refused one is dropped by the firewall and only times out.
const timeout = 3 * time.Second

// dial connects to address: port 53 by a DNS query for the API server's Service name, any other
// port by TCP, reading the listener's "probe".
func dial(ctx context.Context, protocol, address string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	network := strings.ToLower(protocol)
	if network != "tcp" && network != "udp" {
		return fmt.Errorf("protocol %q: want TCP or UDP", protocol)
	}
	if _, port, _ := net.SplitHostPort(address); port == "53" {
		resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
		_, err := resolver.LookupHost(ctx, "kubernetes.default.svc.cluster.local")
		return err
	}
	if network != "tcp" {
		return fmt.Errorf("UDP only to port 53 (DNS)")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "probe\n" {
		return fmt.Errorf("connected but no probe answered (%q, %v)", line, err)
	}
	return nil
}
