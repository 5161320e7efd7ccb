// Package fuzzroutes sends the same seeded stream of hostile requests to both producer routes and
// requires the same status and error field from each for every request (docs/api.md,
// "Differential fuzzing").
package fuzzroutes

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Delivery is how a case's bytes reach the server.
type Delivery int

const (
	// OneWrite sends every byte at once.
	OneWrite Delivery = iota
	// SmallWrites splits the bytes into writes of 1 to 7 bytes.
	SmallWrites
	// ExpectContinue sends the head (with Expect: 100-continue), waits for 100 Continue or an
	// answer, and only then the body.
	ExpectContinue
)

func (d Delivery) String() string {
	return [...]string{"one write", "small writes", "expect 100-continue"}[d]
}

// Request is one HTTP request as raw parts.
type Request struct {
	Method string
	Head   []byte // request line and headers, through the blank line
	Body   []byte // as framed on the wire (chunked or not)
}

// Case is what one generated step sends on one connection: one request, or several pipelined.
type Case struct {
	Requests []Request
	Delivery Delivery
}

// Bytes is the case's whole byte stream.
func (c Case) Bytes() []byte {
	var b bytes.Buffer
	for _, r := range c.Requests {
		b.Write(r.Head)
		b.Write(r.Body)
	}
	return b.Bytes()
}

// onBallot are votes of proto/ballot.json, the mutations' starting points.
var onBallot = []string{
	`{"name":"Alux Nahual","album":"Conquista","year":1982,"rank":3}`,
	`{"name":"Bohemia Suburbana","album":"Sombras en el Jardín","year":"1993","rank":"10"}`,
	`{"rank":1,"year":2015,"album":"Imaginaria Sonora","name":"Bohemia Suburbana"}`,
	`{"name":" Malacates Trébol Shop ","album":"Paquetecuetes","year":1999,"rank":7}`,
	`{"name":"Viernes Verde","album":"P.M.","year":2017,"rank":5}`,
	`{"name":"Alux Nahual","album":"Centroam\u00e9rica","year":1986,"rank":2}`,
}

// fragments are spliced into bodies: JSON's edges, the rules' edges, the ballot's near misses.
var fragments = []string{
	`null`, `true`, `[]`, `{}`, `""`, `"   "`, `0`, `-0`, `1e3`, `1.0`, `-1`, `11`, `2027`, `2028`,
	`1899`, `99999999999999999999`, `"1982"`, `" 1982"`, `"0x7"`, `"\u0000"`, `"\ud800"`,
	`"Alux Nahual"`, `"alux nahual"`, `"Conquista"`, `"Sub"`, `"Made Up"`, `,`, `:`, `"`, `\`,
	`{"name":"a"}`, `,"extra":1`, `,"name":"Viernes Verde"`, `,"rank":1`, "\t", "\n", " ",
	"\xff", "\xc3", "é", `\u00e9`, `"x` + strings.Repeat("y", 120) + `"`,
}

var keys = []string{"name", "album", "year", "rank", "Name", "votes", "", "nam\\u0065"}

// Generate is case i of the stream of seed: the same case whatever order cases are made in.
func Generate(seed uint64, i int) Case {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	c := Case{Delivery: OneWrite}
	switch n := r.IntN(20); {
	case n < 3:
		c.Delivery = SmallWrites
	case n < 5:
		c.Delivery = ExpectContinue
	}
	count := 1
	if c.Delivery != ExpectContinue && r.IntN(8) == 0 {
		count = 2 + r.IntN(2) // pipelined
	}
	for range count {
		c.Requests = append(c.Requests, request(r, c.Delivery == ExpectContinue))
	}
	return c
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func request(r *rand.Rand, expect bool) Request {
	method := "POST"
	if r.IntN(12) == 0 {
		method = pick(r, []string{"GET", "PUT", "HEAD", "DELETE", "OPTIONS", "post", "PATCH"})
	}
	target := "/votes"
	if r.IntN(10) == 0 {
		target = pick(r, []string{"/votes?x=1", "/votes/", "/vote", "/healthz", "/readyz", "/nope", "/",
			"/VOTES", "/votes?", "/votes#x", "/votes%20", "//votes", "/./votes", "/votes/..",
			"/%76otes", "/vot%65s?a=b", "/%zz", "/votes%", "http://producer/votes", "HTTP://producer/votes?x",
			"http://producer", "*"})
	}
	version := "HTTP/1.1"
	if r.IntN(25) == 0 {
		version = pick(r, []string{"HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1"})
	}
	body := []byte(mutateBody(r, pick(r, onBallot)))

	type header struct{ name, value string }
	var headers []header
	if r.IntN(40) != 0 {
		headers = append(headers, header{"Host", "producer"})
	}
	switch n := r.IntN(20); {
	case n < 14:
		headers = append(headers, header{"Content-Type", "application/json"})
	case n < 19:
		headers = append(headers, header{"Content-Type", pick(r, []string{
			"application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON",
			"application/json; charset=latin1", "text/plain", "application/json; v=1", "",
			"application/json ; charset=\"utf-8\"", "application/jsonx", "application/x-www-form-urlencoded",
			"application/json; charset=utf-8; charset=utf-8", "application/json;"})})
	}
	if r.IntN(5) == 0 {
		headers = append(headers, header{"Idempotency-Key", pick(r, []string{
			"fuzz-" + strconv.Itoa(r.IntN(1000)), "", " k ", strings.Repeat("k", 128), strings.Repeat("k", 129),
			"clave-ñ", "a\tb", "~!@#$%^&*()"})})
		if r.IntN(6) == 0 {
			headers = append(headers, header{"Idempotency-Key", "second"})
		}
	}
	if r.IntN(8) == 0 {
		headers = append(headers, header{pick(r, []string{"X-Fuzz", "x-forwarded-for", "Accept", "User-Agent"}),
			pick(r, []string{"1", "", "a, b", strings.Repeat("v", 200)})})
	}
	if r.IntN(10) == 0 {
		headers = append(headers, header{"Connection", pick(r, []string{"close", "keep-alive", "Close", "upgrade"})})
	}
	if expect {
		headers = append(headers, header{"Expect", "100-continue"})
	}

	// Framing: mostly an exact Content-Length, sometimes chunked, sometimes wrong.
	var wire []byte
	switch n := r.IntN(20); {
	case n < 14:
		headers = append(headers, header{"Content-Length", strconv.Itoa(len(body))})
		wire = body
	case n < 18:
		headers = append(headers, header{"Transfer-Encoding", pick(r, []string{"chunked", "chunked", "Chunked"})})
		wire = chunk(r, body)
	case n < 19:
		headers = append(headers, header{"Content-Length", pick(r, []string{
			strconv.Itoa(len(body)) + ", " + strconv.Itoa(len(body)), "-1", "+5", "1e2", strconv.Itoa(len(body) + 1000), "4097"})})
		wire = body
		if r.IntN(2) == 0 {
			wire = body[:len(body)/2] // truncated body: the server must time out or answer
		}
	default:
		headers = append(headers,
			header{"Content-Length", strconv.Itoa(len(body))},
			header{"Transfer-Encoding", pick(r, []string{"chunked", "gzip, chunked", "identity"})})
		wire = chunk(r, body)
	}
	if method == "GET" || method == "HEAD" || method == "DELETE" || method == "OPTIONS" {
		if r.IntN(2) == 0 { // most such requests carry no body
			kept := headers[:0]
			for _, h := range headers {
				if h.name != "Content-Length" && h.name != "Transfer-Encoding" {
					kept = append(kept, h)
				}
			}
			headers, wire = kept, nil
		}
	}
	r.Shuffle(len(headers), func(a, b int) { headers[a], headers[b] = headers[b], headers[a] })

	var head strings.Builder
	fmt.Fprintf(&head, "%s %s %s\r\n", method, target, version)
	for _, h := range headers {
		name := h.name
		if r.IntN(10) == 0 {
			name = strings.ToLower(name)
		}
		sep := ": "
		if r.IntN(15) == 0 {
			sep = pick(r, []string{":", ":\t", ":  "})
		}
		fmt.Fprintf(&head, "%s%s%s\r\n", name, sep, h.value)
	}
	head.WriteString("\r\n")
	return Request{Method: method, Head: []byte(head.String()), Body: wire}
}

// chunk frames body in chunks of random sizes, sometimes with extensions or trailers.
func chunk(r *rand.Rand, body []byte) []byte {
	var b bytes.Buffer
	for len(body) > 0 {
		n := min(len(body), 1+r.IntN(40))
		ext := ""
		if r.IntN(20) == 0 {
			ext = ";ext=1"
		}
		size := strconv.FormatInt(int64(n), 16)
		if r.IntN(10) == 0 {
			size = strings.ToUpper(size)
		}
		fmt.Fprintf(&b, "%s%s\r\n", size, ext)
		b.Write(body[:n])
		b.WriteString("\r\n")
		body = body[n:]
	}
	b.WriteString("0\r\n")
	if r.IntN(20) == 0 {
		b.WriteString("X-Trailer: 1\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// mutateBody applies 0 to 3 mutations to a valid vote.
func mutateBody(r *rand.Rand, body string) string {
	for range r.IntN(4) {
		switch r.IntN(9) {
		case 0: // replace a byte
			if len(body) > 0 {
				i := r.IntN(len(body))
				body = body[:i] + string(rune(r.IntN(128))) + body[i+1:]
			}
		case 1: // delete a range
			if len(body) > 1 {
				i := r.IntN(len(body))
				j := i + r.IntN(min(8, len(body)-i)+1)
				body = body[:i] + body[j:]
			}
		case 2: // insert a fragment
			i := r.IntN(len(body) + 1)
			body = body[:i] + pick(r, fragments) + body[i:]
		case 3: // replace a value with a fragment
			k := pick(r, keys[:4])
			if i := strings.Index(body, `"`+k+`":`); i >= 0 {
				start := i + len(k) + 3
				end := strings.IndexAny(body[start:], ",}")
				if end >= 0 {
					body = body[:start] + pick(r, fragments) + body[start+end:]
				}
			}
		case 4: // add a member
			body = strings.TrimSuffix(body, "}") + fmt.Sprintf(`,"%s":%s}`, pick(r, keys), pick(r, fragments))
		case 5: // drop a member
			k := pick(r, keys[:4])
			if i := strings.Index(body, `"`+k+`":`); i >= 0 {
				end := strings.IndexAny(body[i:], ",}")
				if end >= 0 {
					body = body[:i] + body[i+end:]
				}
			}
		case 6: // truncate
			body = body[:r.IntN(len(body)+1)]
		case 7: // whitespace around
			body = pick(r, []string{" ", "\n", "\t", "\r\n", ""}) + body + pick(r, []string{" ", "\n", "", " {}"})
		case 8: // grow past the 4 KiB limit
			if r.IntN(4) == 0 {
				body = strings.TrimSuffix(body, "}") + `,"pad":"` + strings.Repeat("p", 4100) + `"}`
			}
		}
	}
	return body
}
