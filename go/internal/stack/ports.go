package stack

import (
	"fmt"
	"net"
)

// FreePorts returns a set of ports that were free a moment ago, for an isolated test stack.
// The listeners stay open until all ports are picked, so the ports differ from each other.
func FreePorts() (Ports, error) {
	var ports Ports
	for _, p := range ports.named() {
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			return Ports{}, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		*p.port = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
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
