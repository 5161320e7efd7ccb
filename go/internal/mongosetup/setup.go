// Package mongosetup forms MongoDB's replica set and keeps its users as they should be, with
// MongoDB's own commands (the manual's "Database Commands"), each one document:
//
//	ping: 1                                  until every member answers
//	replSetGetStatus: 1                      on the first member: is the set initiated?
//	replSetInitiate: {_id, members: [{_id, host}]}   only when it answers NotYetInitialized
//	hello: 1                                 on each member, until one is the writable primary
//	usersInfo: {user, db: "admin"}           on the primary, per user
//	createUser: name, pwd, roles, writeConcern       a user that does not exist yet
//	updateUser: name, pwd, roles, writeConcern       one that does: its password and roles reset
//
// Every command runs against the admin database of one member, directly (users live in admin,
// replSet commands are admin-only, and before the set exists no replica-set connection can be
// made). Running it again changes nothing but the users' passwords and roles to what they should
// be. A server without replica sets or user commands (the tests' MongoDB-wire server, FerretDB)
// is set up with ReplicaSet "" and no Users: then only the pings run.
package mongosetup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Server runs one command against the admin database of one member (host:port), directly.
type Server interface {
	Run(ctx context.Context, member string, cmd bson.D) (bson.Raw, error)
}

// User is a database user the setup keeps: its password and its roles, each on one database.
// The user itself lives in admin (clients authenticate with authSource=admin).
type User struct {
	Name, Password string
	Roles          []Role
}

// Role is a built-in role on one database, such as readWrite on tally.
type Role struct{ Role, DB string }

// Config is what to set up.
type Config struct {
	// Members are the servers, host:port; the first is where a replica set is initiated.
	Members []string
	// ReplicaSet is the set's name (the members' --replSet); "" for a server that has none.
	ReplicaSet string
	// Users are created or reset; nil for a server without user commands.
	Users []User
	// Poll is the pause between two tries while waiting for members or a primary.
	Poll time.Duration
}

// codeNotYetInitialized is replSetGetStatus's error before replSetInitiate; codeAlreadyInitialized
// is replSetInitiate's when another run initiated the set meanwhile.
const (
	codeNotYetInitialized  = 94
	codeAlreadyInitialized = 23
)

// Run sets up the servers of cfg; it waits (until ctx ends) for members and a primary.
func Run(ctx context.Context, s Server, cfg Config, log *slog.Logger) error {
	if len(cfg.Members) == 0 {
		return errors.New("no members")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	for _, m := range cfg.Members {
		if err := waitFor(ctx, cfg.Poll, log, "member "+m+" answering", func(ctx context.Context) (bool, error) {
			_, err := s.Run(ctx, m, bson.D{{Key: "ping", Value: 1}})
			return err == nil, nil
		}); err != nil {
			return err
		}
	}
	primary := cfg.Members[0]
	if cfg.ReplicaSet != "" {
		if err := initiate(ctx, s, cfg, log); err != nil {
			return err
		}
		var err error
		if primary, err = waitForPrimary(ctx, s, cfg, log); err != nil {
			return err
		}
	}
	for _, u := range cfg.Users {
		if err := keepUser(ctx, s, primary, u, log); err != nil {
			return err
		}
	}
	return nil
}

// InitiateCommand is replSetInitiate with every member, numbered in order.
func InitiateCommand(name string, members []string) bson.D {
	list := make(bson.A, len(members))
	for i, host := range members {
		list[i] = bson.D{{Key: "_id", Value: int32(i)}, {Key: "host", Value: host}}
	}
	return bson.D{{Key: "replSetInitiate", Value: bson.D{{Key: "_id", Value: name}, {Key: "members", Value: list}}}}
}

// initiate initiates the replica set unless the first member says it is.
func initiate(ctx context.Context, s Server, cfg Config, log *slog.Logger) error {
	first := cfg.Members[0]
	_, err := s.Run(ctx, first, bson.D{{Key: "replSetGetStatus", Value: 1}})
	if err == nil {
		log.Info("replica set already initiated", "replica_set", cfg.ReplicaSet)
		return nil
	}
	if !hasCode(err, codeNotYetInitialized) {
		return fmt.Errorf("replSetGetStatus on %s: %w", first, err)
	}
	log.Info("initiating the replica set", "replica_set", cfg.ReplicaSet, "members", cfg.Members)
	if _, err := s.Run(ctx, first, InitiateCommand(cfg.ReplicaSet, cfg.Members)); err != nil && !hasCode(err, codeAlreadyInitialized) {
		return fmt.Errorf("replSetInitiate on %s: %w", first, err)
	}
	return nil
}

// waitForPrimary asks each member until one is the set's writable primary.
func waitForPrimary(ctx context.Context, s Server, cfg Config, log *slog.Logger) (string, error) {
	var primary string
	err := waitFor(ctx, cfg.Poll, log, "a primary", func(ctx context.Context) (bool, error) {
		for _, m := range cfg.Members {
			raw, err := s.Run(ctx, m, bson.D{{Key: "hello", Value: 1}})
			if err != nil {
				continue
			}
			var hello struct {
				IsWritablePrimary bool   `bson:"isWritablePrimary"`
				SetName           string `bson:"setName"`
			}
			if err := bson.Unmarshal(raw, &hello); err != nil {
				return false, fmt.Errorf("hello from %s: %w", m, err)
			}
			if hello.IsWritablePrimary && hello.SetName == cfg.ReplicaSet {
				primary = m
				return true, nil
			}
		}
		return false, nil
	})
	if err == nil {
		log.Info("primary found", "member", primary)
	}
	return primary, err
}

// UserCommand is createUser (exists false) or updateUser for u: its password and roles, written
// to a majority so a failover keeps them.
func UserCommand(u User, exists bool) bson.D {
	name := "createUser"
	if exists {
		name = "updateUser"
	}
	roles := make(bson.A, len(u.Roles))
	for i, r := range u.Roles {
		roles[i] = bson.D{{Key: "role", Value: r.Role}, {Key: "db", Value: r.DB}}
	}
	return bson.D{
		{Key: name, Value: u.Name},
		{Key: "pwd", Value: u.Password},
		{Key: "roles", Value: roles},
		{Key: "writeConcern", Value: bson.D{{Key: "w", Value: "majority"}}},
	}
}

// keepUser creates u on member, or resets its password and roles if it exists.
func keepUser(ctx context.Context, s Server, member string, u User, log *slog.Logger) error {
	raw, err := s.Run(ctx, member, bson.D{{Key: "usersInfo", Value: bson.D{{Key: "user", Value: u.Name}, {Key: "db", Value: "admin"}}}})
	if err != nil {
		return fmt.Errorf("usersInfo %s: %w", u.Name, err)
	}
	var info struct {
		Users []bson.Raw `bson:"users"`
	}
	if err := bson.Unmarshal(raw, &info); err != nil {
		return fmt.Errorf("usersInfo %s: %w", u.Name, err)
	}
	exists := len(info.Users) > 0
	if _, err := s.Run(ctx, member, UserCommand(u, exists)); err != nil {
		return fmt.Errorf("user %s: %w", u.Name, err)
	}
	log.Info("user kept", "user", u.Name, "roles", u.Roles, "existed", exists)
	return nil
}

// waitFor calls done every poll until it says true or fails, or ctx ends.
func waitFor(ctx context.Context, poll time.Duration, log *slog.Logger, what string, done func(context.Context) (bool, error)) error {
	for attempt := 1; ; attempt++ {
		ok, err := done(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Info("waiting for "+what, "attempt", attempt)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// hasCode reports whether err is a server's command error with that code.
func hasCode(err error, code int32) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == code
}
