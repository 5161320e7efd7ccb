package stack

import (
	"fmt"
	"net"
)

// FreePorts returns a set of ports that were free a moment ago, for an isolated test stack.
// The listeners stay open until all ports are picked, so the ports differ from each other.
func FreePorts() (Ports, error) {
	var ports [4]int
	for i := range ports {
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			return Ports{}, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return Ports{Kafka: ports[0], KafkaController: ports[1], Redis: ports[2], Mongo: ports[3]}, nil
}

// CheckFree fails naming the first port something already listens on.
func (p Ports) CheckFree() error {
	for _, port := range []struct {
		name string
		n    int
	}{{"kafka", p.Kafka}, {"kafka controller", p.KafkaController}, {"redis", p.Redis}, {"mongo", p.Mongo}} {
		l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", host, port.n))
		if err != nil {
			return fmt.Errorf("port %d (%s) is already in use; see who holds it with: ss -ltnp 'sport = :%d'", port.n, port.name, port.n)
		}
		l.Close()
	}
	return nil
}
