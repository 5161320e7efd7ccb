package stack

import (
	"context"
	"net"
	"strconv"
)

// WebName is the webapp's process (go/cmd/web): the built Vue app, with /api/ proxied to the API.
const WebName = "web"

// WebURL is the webapp's address: open it in a browser.
func (c Config) WebURL() string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.Web))
}

func (c Config) web() Process {
	return Process{
		Name: WebName,
		Args: []string{c.Web},
		Env: []string{
			"HTTP_ADDR=" + net.JoinHostPort(host, strconv.Itoa(c.Ports.Web)),
			"WEB_ROOT=" + c.WebDist,
			"API_URL=" + c.APIURL(),
			"LOG_LEVEL=WARN",
		},
		Needs: []string{APIName},
		Addr:  c.WebURL() + " (the webapp: open it in a browser)",
		Ready: func(ctx context.Context) error { return HTTPOK(ctx, c.WebURL()+"/readyz") },
	}
}
