package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tally-voting/tally/go/internal/envconf"
)

// ClientLimits bound what slow, idle and too many clients can take from a public server
// (docs/api.md, "Hostile clients"); the Wasm producer reads the same variables.
type ClientLimits struct {
	// HeaderTimeout: a connection must send a whole request head within this.
	HeaderTimeout time.Duration
	// BodyTimeout: ... and its body within this more.
	BodyTimeout time.Duration
	// IdleTimeout: a keep-alive connection with no request under way is closed after this.
	IdleTimeout time.Duration
	// MaxConnections are served at once; a connection beyond is answered 503 at once.
	MaxConnections int
}

// ReadClientLimits reads HTTP_HEADER_TIMEOUT (5 s), HTTP_BODY_TIMEOUT (10 s), HTTP_IDLE_TIMEOUT
// (30 s) and HTTP_MAX_CONNECTIONS (16384).
func ReadClientLimits(r *envconf.Reader) ClientLimits {
	return ClientLimits{
		HeaderTimeout:  r.Duration("HTTP_HEADER_TIMEOUT", 5*time.Second),
		BodyTimeout:    r.Duration("HTTP_BODY_TIMEOUT", 10*time.Second),
		IdleTimeout:    r.Duration("HTTP_IDLE_TIMEOUT", 30*time.Second),
		MaxConnections: r.Int("HTTP_MAX_CONNECTIONS", 16384, 1, 1<<20),
	}
}

// Apply sets srv's timeouts. net/http's ReadTimeout runs from the start of a request, so the
// body's time is the head's plus BodyTimeout.
func (l ClientLimits) Apply(srv *http.Server) {
	srv.ReadHeaderTimeout = l.HeaderTimeout
	srv.ReadTimeout = l.HeaderTimeout + l.BodyTimeout
	srv.IdleTimeout = l.IdleTimeout
}

// overflowAnswers bounds the connections being told "too many" at once; past it they are closed
// without an answer.
const overflowAnswers = 256

// tooManyConnections is the whole answer to a connection beyond the limit, written before its
// request is read (the Wasm producer answers the same).
var tooManyConnections = func() []byte {
	body := `{"error":"too many connections; retry later"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: application/json\r\n" +
		"X-Content-Type-Options: nosniff\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// Listener is ln holding at most l.MaxConnections open connections: Accept keeps accepting, and
// answers each connection beyond the limit with 503 and Retry-After itself, so a newcomer is told
// at once instead of waiting in the kernel's backlog.
func (l ClientLimits) Listener(ln net.Listener, log *slog.Logger) net.Listener {
	return &limitListener{Listener: ln, max: int64(l.MaxConnections), log: log,
		overflow: make(chan struct{}, overflowAnswers)}
}

type limitListener struct {
	net.Listener
	max      int64
	open     atomic.Int64
	log      *slog.Logger
	overflow chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &countedConn{Conn: c, open: &l.open}, nil
		}
		l.open.Add(-1)
		select {
		case l.overflow <- struct{}{}:
			go l.refuse(c)
		default:
			c.Close()
		}
	}
}

// refuse writes the 503, then reads (and drops) what the client sends for a moment before
// closing: closing with its request unread would reset the connection and could destroy the
// answer before the client reads it.
func (l *limitListener) refuse(c net.Conn) {
	defer func() { <-l.overflow }()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(tooManyConnections); err != nil {
		return
	}
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	if _, err := io.Copy(io.Discard, io.LimitReader(c, 64<<10)); err != nil && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			l.log.Debug("drain refused connection", "error", err.Error())
		}
	}
}

// countedConn gives its slot back once, however often it is closed.
type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}
