// Command mongodb-setup forms MongoDB's replica set and keeps the users consumer (readWrite on
// tally and tally_recent) and api (read on both) with the passwords of their Secrets: the Kubernetes Job
// mongodb-setup (k8s/manifests/mongodb.yaml). It waits for every member, initiates the set if it
// is not yet, waits for a primary and creates or resets the users; run again, it changes nothing
// but what differs. go/internal/mongosetup has the commands; README.md the settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/envconf"
	"github.com/tally-voting/tally/go/internal/mongosetup"
	"github.com/tally-voting/tally/go/internal/service"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// Config is the setup's settings, from the environment. Passwords are read as they are (no
// trimming) and never logged.
type Config struct {
	Setup    mongosetup.Config
	RootUser string
	RootPass string
	Timeout  time.Duration
	LogLevel slog.Level
}

// databases are where the users' roles apply: the consumer's and the API's data (docs/data.md).
var databases = []string{votelog.Database, votelog.RecentDatabaseOf(votelog.Database)}

func configFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.Reader{Get: getenv}
	cfg := Config{
		Setup: mongosetup.Config{
			Members:    r.List("MEMBERS", nil),
			ReplicaSet: r.String("REPLICA_SET", ""),
			Poll:       r.Duration("POLL_INTERVAL", 2*time.Second),
		},
		RootUser: r.String("ROOT_USER", ""),
		RootPass: getenv("ROOT_PASSWORD"),
		Timeout:  r.Duration("SETUP_TIMEOUT", 10*time.Minute),
		LogLevel: r.LogLevel("LOG_LEVEL", slog.LevelInfo),
	}
	users := r.Bool("USERS", false)
	var errs []error
	if len(cfg.Setup.Members) == 0 {
		errs = append(errs, errors.New("MEMBERS: want host:port[,host:port...]"))
	}
	if (cfg.RootUser == "") != (cfg.RootPass == "") {
		errs = append(errs, errors.New("ROOT_USER and ROOT_PASSWORD: set both or neither"))
	}
	if users {
		for _, u := range []struct{ name, env, role string }{
			{"consumer", "CONSUMER_PASSWORD", "readWrite"},
			{"api", "API_PASSWORD", "read"},
		} {
			pw := getenv(u.env)
			if pw == "" {
				errs = append(errs, fmt.Errorf("%s is empty: USERS=true needs the %s user's password", u.env, u.name))
			}
			user := mongosetup.User{Name: u.name, Password: pw}
			for _, db := range databases {
				user.Roles = append(user.Roles, mongosetup.Role{Role: u.role, DB: db})
			}
			cfg.Setup.Users = append(cfg.Setup.Users, user)
		}
	}
	return cfg, errors.Join(append([]error{r.Err()}, errs...)...)
}

func main() {
	service.Main("mongodb-setup", configFromEnv, func(c Config) slog.Level { return c.LogLevel }, run)
}

func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	s := &members{clients: map[string]*mongo.Client{}}
	if cfg.RootUser != "" {
		s.auth = &options.Credential{Username: cfg.RootUser, Password: cfg.RootPass, AuthSource: "admin"}
	}
	defer s.close(context.WithoutCancel(ctx))
	if err := mongosetup.Run(ctx, s, cfg.Setup, log); err != nil {
		return err
	}
	log.Info("set up", "members", len(cfg.Setup.Members), "replica_set", cfg.Setup.ReplicaSet, "users", len(cfg.Setup.Users))
	return nil
}

// members connects to each member on its own (directConnection), as the administrator.
type members struct {
	auth    *options.Credential
	mu      sync.Mutex
	clients map[string]*mongo.Client
}

func (m *members) Run(ctx context.Context, member string, cmd bson.D) (bson.Raw, error) {
	c, err := m.client(member)
	if err != nil {
		return nil, err
	}
	return c.Database("admin").RunCommand(ctx, cmd).Raw()
}

func (m *members) client(member string) (*mongo.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[member]; ok {
		return c, nil
	}
	opts := options.Client().ApplyURI("mongodb://" + member + "/?directConnection=true").
		SetServerSelectionTimeout(5 * time.Second).SetConnectTimeout(5 * time.Second)
	if m.auth != nil {
		opts.SetAuth(*m.auth)
	}
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", member, err)
	}
	m.clients[member] = c
	return c, nil
}

func (m *members) close(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.clients {
		_ = c.Disconnect(ctx)
	}
}
