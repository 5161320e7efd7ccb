package stack

import (
	"net"
	"strconv"
	"testing"
)

// Test stacks get distinct ports, outside the ephemeral range when it is known, and bindable.
func TestFreePorts(t *testing.T) {
	ports, err := FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := portRange()
	seen := map[int]bool{}
	for _, p := range ports.named() {
		port := *p.port
		if seen[port] {
			t.Errorf("port %d given twice", port)
		}
		seen[port] = true
		if lo > 0 && (port < lo || port > hi) {
			t.Errorf("%s port %d outside [%d, %d]", p.name, port, lo, hi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			t.Errorf("%s port %d is not free: %v", p.name, port, err)
			continue
		}
		l.Close()
	}
}
