package httpcontract_test

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// With the rate limit on (RATE_LIMIT_PER_SECOND, RATE_LIMIT_BURST, one trusted proxy hop), a
// client over its rate gets 429 with Retry-After and the JSON error, however it forges the left
// of X-Forwarded-For, while a second client at a normal rate gets only 202s. The two clients are
// told apart by the address the (pretended) proxy appends to X-Forwarded-For.
func TestOneClientOverItsRateDoesNotLimitAnother(t *testing.T) {
	c := setup(t)
	rate, err := strconv.ParseFloat(os.Getenv("RATE_LIMIT_PER_SECOND"), 64)
	if err != nil || rate <= 0 {
		t.Fatalf("RATE_LIMIT_PER_SECOND=%q: this suite needs the limit on", os.Getenv("RATE_LIMIT_PER_SECOND"))
	}
	burst, err := strconv.Atoi(os.Getenv("RATE_LIMIT_BURST"))
	if err != nil {
		t.Fatalf("RATE_LIMIT_BURST: %v", err)
	}
	const duration = 3 * time.Second
	body := `{"name":"Viernes Verde","album":"P.M.","year":2017,"rank":3}`

	var wg sync.WaitGroup
	var flooderCodes, normalCodes map[int]int
	start := time.Now()
	wg.Go(func() {
		flooderCodes = map[int]int{}
		for i := 0; time.Since(start) < duration; i++ {
			// Whatever the client writes on the left, the proxy's entry (the last) decides.
			xff := fmt.Sprintf("10.9.%d.%d, 198.51.100.1", i/250%250, i%250)
			r := c.vote(t, body, "X-Forwarded-For", xff)
			flooderCodes[r.code]++
			if r.code == http.StatusTooManyRequests {
				if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
					t.Errorf("429 with Retry-After %q", r.header.Get("Retry-After"))
				}
				if r.Error == "" || r.Field != "" {
					t.Errorf("429 body %s, want the JSON error without a field", r.body)
				}
			}
		}
	})
	wg.Go(func() {
		normalCodes = map[int]int{}
		every := time.Duration(float64(time.Second) / rate * 2) // half the allowed rate
		for time.Since(start) < duration {
			r := c.vote(t, body, "X-Forwarded-For", "198.51.100.2")
			normalCodes[r.code]++
			time.Sleep(every)
		}
	})
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%s route, %g/s burst %d: flooder %v, normal client %v", c.route, rate, burst, flooderCodes, normalCodes)

	if len(normalCodes) != 1 || normalCodes[http.StatusAccepted] == 0 {
		t.Errorf("the client at a normal rate got %v, want only 202s", normalCodes)
	}
	if flooderCodes[http.StatusTooManyRequests] == 0 {
		t.Errorf("the flooder got %v, want 429s", flooderCodes)
	}
	if most := burst + int(rate*elapsed.Seconds()) + 1; flooderCodes[http.StatusAccepted] > most {
		t.Errorf("the flooder got %d votes accepted in %v, at most %d allowed", flooderCodes[http.StatusAccepted], elapsed, most)
	}
	if len(flooderCodes) != 2 {
		t.Errorf("the flooder got %v, want only 202 and 429", flooderCodes)
	}
}
