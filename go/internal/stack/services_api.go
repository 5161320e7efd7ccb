package stack

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// APIName is the Node API's process (node/): node src/server.js.
const APIName = "api"

// APIURL is the base URL of the Node API.
func (c Config) APIURL() string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.API))
}

func (c Config) api() Process {
	// The API runs from a copy of its package beside a node_modules link. Node resolves a module's
	// imports from the module's real path, so running API's files in place (Bazel's output or
	// runfiles, which have no node_modules above them) would not find its packages.
	app := filepath.Join(c.DataDir, APIName, "app")
	return Process{
		Name: APIName,
		Args: []string{c.Node, filepath.Join(app, "src", "server.js")},
		Env: append(c.Env(),
			"HOST="+host,
			"PORT="+strconv.Itoa(c.Ports.API),
			"LOG_LEVEL=warn",
			// The ballot the API serves (GET /api/ballot): the file the producers check votes against.
			"TALLY_BALLOT="+c.ballotSetting(),
		),
		Needs: []string{RedisName, MongoName},
		Addr:  c.APIURL(),
		Setup: func(context.Context) error {
			if err := os.RemoveAll(app); err != nil {
				return err
			}
			if err := CopyTree(c.API, app); err != nil {
				return fmt.Errorf("copy the API to %s: %w", app, err)
			}
			return os.Symlink(c.APINodeModules, filepath.Join(app, "node_modules"))
		},
		Ready: func(ctx context.Context) error { return HTTPOK(ctx, c.APIURL()+"/readyz") },
	}
}

// CopyTree copies the regular files under src (following symlinks, as runfiles are) to dst: the
// API's files here, a server's data directory in the crash tests.
func CopyTree(src, dst string) error {
	// `bazel run` links a directory output into the runfiles as a whole; WalkDir would not enter it.
	src, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(path, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
