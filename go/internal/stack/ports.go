package stack

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreePorts returns a set of ports that were free a moment ago, for an isolated test stack.
// The listeners stay open until all ports are picked, so the ports differ from each other.
//
// The ports are drawn at random from below the kernel's ephemeral range: a server binds its port
// seconds after this returns (after Kafka is ready, say), and in the meantime any outgoing
// connection on the machine could take a port from the ephemeral range as its local port, and a
// parallel test asking the kernel for ":0" could be handed the same one.
func FreePorts() (Ports, error) {
	lo, hi := portRange()
	var ports Ports
	for _, p := range ports.named() {
		l, err := listenFree(lo, hi)
		if err != nil {
			return Ports{}, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		*p.port = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// lowestTestPort keeps test stacks off the ports below it, where well-known servers live.
const lowestTestPort = 20000

// portRange is [lowestTestPort, start of the ephemeral range), or 0, 0 when that is not known.
func portRange() (lo, hi int) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0, 0
	}
	ephemeral, err := strconv.Atoi(fields[0])
	if err != nil || ephemeral-1 <= lowestTestPort+1000 {
		return 0, 0
	}
	return lowestTestPort, ephemeral - 1
}

// listenFree listens on a random free port in [lo, hi], or on one the kernel picks.
func listenFree(lo, hi int) (net.Listener, error) {
	if lo > 0 {
		for range 200 {
			port := lo + rand.IntN(hi-lo+1)
			if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
				return l, nil
			}
		}
	}
	return net.Listen("tcp", host+":0")
}

// CheckFree fails naming the first port something already listens on.
func (p Ports) CheckFree() error {
	for _, port := range p.named() {
		l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", host, *port.port))
		if err != nil {
			return fmt.Errorf("port %d (%s) is already in use; see who holds it with: ss -ltnp 'sport = :%d'",
				*port.port, port.name, *port.port)
		}
		l.Close()
	}
	return nil
}
