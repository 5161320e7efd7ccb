package mongosetup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// shape is one database command as MongoDB's manual documents it: the command's own field comes
// first with the value of check, then only the optional or required fields the page lists.
type shape struct {
	check    func(v bson.RawValue) error
	required []string
	fields   map[string]func(v bson.RawValue) error
}

func isNumber(v bson.RawValue) error {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		return nil
	}
	return fmt.Errorf("%s, want a number", v.Type)
}

func isString(v bson.RawValue) error {
	if s, ok := v.StringValueOK(); !ok || s == "" {
		return fmt.Errorf("%s %v, want a non-empty string", v.Type, v)
	}
	return nil
}

func isDocument(fields map[string]func(bson.RawValue) error, required ...string) func(bson.RawValue) error {
	return func(v bson.RawValue) error {
		doc, ok := v.DocumentOK()
		if !ok {
			return fmt.Errorf("%s, want a document", v.Type)
		}
		return checkFields(doc, fields, required)
	}
}

func isArrayOf(each func(bson.RawValue) error) func(bson.RawValue) error {
	return func(v bson.RawValue) error {
		arr, ok := v.ArrayOK()
		if !ok {
			return fmt.Errorf("%s, want an array", v.Type)
		}
		values, err := arr.Values()
		if err != nil {
			return err
		}
		for i, e := range values {
			if err := each(e); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	}
}

func checkFields(doc bson.Raw, fields map[string]func(bson.RawValue) error, required []string) error {
	elems, err := doc.Elements()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range elems {
		check, ok := fields[e.Key()]
		if !ok {
			return fmt.Errorf("field %q is not documented", e.Key())
		}
		if err := check(e.Value()); err != nil {
			return fmt.Errorf("%s: %w", e.Key(), err)
		}
		seen[e.Key()] = true
	}
	for _, r := range required {
		if !seen[r] {
			return fmt.Errorf("required field %q missing", r)
		}
	}
	return nil
}

// role is a roles entry: {role: "<name>", db: "<database>"} (a bare string would name a role of
// the database the command runs on, admin: not what Tally's users need).
var role = isDocument(map[string]func(bson.RawValue) error{"role": isString, "db": isString}, "role", "db")

var writeConcern = isDocument(map[string]func(bson.RawValue) error{
	"w": func(v bson.RawValue) error {
		if s, ok := v.StringValueOK(); ok && s == "majority" {
			return nil
		}
		return isNumber(v)
	},
	"j": func(bson.RawValue) error { return nil }, "wtimeout": isNumber,
})

// documented is MongoDB 8.0's manual for the commands the setup may send (Database Commands:
// ping, hello, replSetGetStatus, replSetInitiate, usersInfo, createUser, updateUser). Anything
// else, a field the page does not list, or a value of another type fails the test.
var documented = map[string]shape{
	"ping":             {check: isNumber},
	"hello":            {check: isNumber},
	"replSetGetStatus": {check: isNumber},
	// replSetInitiate: <config>, the replica set configuration document: _id (the set's name, as
	// --replSet), members: [{_id: <int>, host: "<host:port>"}, ...].
	"replSetInitiate": {check: isDocument(map[string]func(bson.RawValue) error{
		"_id": isString,
		"members": isArrayOf(isDocument(map[string]func(bson.RawValue) error{
			"_id": func(v bson.RawValue) error {
				if _, ok := v.Int32OK(); !ok {
					return fmt.Errorf("%s, want an integer", v.Type)
				}
				return nil
			},
			"host": isString,
		}, "_id", "host")),
	}, "_id", "members")},
	// usersInfo: <user name> | {user, db} | [...] | 1, with showCredentials, showPrivileges, ...
	"usersInfo": {check: func(v bson.RawValue) error {
		if isString(v) == nil {
			return nil
		}
		return isDocument(map[string]func(bson.RawValue) error{"user": isString, "db": isString}, "user", "db")(v)
	}, fields: map[string]func(bson.RawValue) error{
		"showCredentials": nil, "showCustomData": nil, "showPrivileges": nil, "showAuthenticationRestrictions": nil, "filter": nil, "comment": nil,
	}},
	// createUser: "<name>", pwd, customData, roles (required), authenticationRestrictions,
	// mechanisms, digestPassword, writeConcern, comment.
	"createUser": {check: isString, required: []string{"pwd", "roles"}, fields: map[string]func(bson.RawValue) error{
		"pwd": isString, "roles": isArrayOf(role), "writeConcern": writeConcern,
		"customData": nil, "authenticationRestrictions": nil, "mechanisms": nil, "digestPassword": nil, "comment": nil,
	}},
	// updateUser: "<name>", the same fields, none required.
	"updateUser": {check: isString, fields: map[string]func(bson.RawValue) error{
		"pwd": isString, "roles": isArrayOf(role), "writeConcern": writeConcern,
		"customData": nil, "authenticationRestrictions": nil, "mechanisms": nil, "digestPassword": nil, "comment": nil,
	}},
}

// checkCommand checks cmd against documented and returns its name.
func checkCommand(cmd bson.D) (string, error) {
	raw, err := bson.Marshal(cmd)
	if err != nil {
		return "", err
	}
	elems, err := bson.Raw(raw).Elements()
	if err != nil || len(elems) == 0 {
		return "", fmt.Errorf("empty command: %v", err)
	}
	name := elems[0].Key()
	s, ok := documented[name]
	if !ok {
		return name, fmt.Errorf("%s is not a command the setup may send", name)
	}
	if err := s.check(elems[0].Value()); err != nil {
		return name, fmt.Errorf("%s: %w", name, err)
	}
	fields := map[string]func(bson.RawValue) error{}
	for k, f := range s.fields {
		if f == nil {
			f = func(bson.RawValue) error { return nil }
		}
		fields[k] = f
	}
	rest, err := bson.Marshal(cmd[1:])
	if err != nil {
		return name, err
	}
	if err := checkFields(rest, fields, s.required); err != nil {
		return name, fmt.Errorf("%s: %w", name, err)
	}
	return name, nil
}

// server plays a replica set as MongoDB answers these commands: a set that does not exist
// until replSetInitiate, a primary after two more hellos, users created and updated.
type server struct {
	t         *testing.T
	down      map[string]int // member -> pings it fails first
	initiated bool
	hellos    int
	users     map[string]bson.D
	sent      []string // "member command"
}

func (s *server) Run(_ context.Context, member string, cmd bson.D) (bson.Raw, error) {
	name, err := checkCommand(cmd)
	if err != nil {
		s.t.Errorf("on %s: %v (command %v)", member, err, cmd)
		return nil, mongo.CommandError{Code: 59, Name: "CommandNotFound", Message: err.Error()}
	}
	s.sent = append(s.sent, member+" "+name)
	reply := func(d bson.D) (bson.Raw, error) {
		raw, err := bson.Marshal(append(d, bson.E{Key: "ok", Value: 1.0}))
		return raw, err
	}
	switch name {
	case "ping":
		if s.down[member] > 0 {
			s.down[member]--
			return nil, fmt.Errorf("server selection error: %s unreachable", member)
		}
		return reply(nil)
	case "replSetGetStatus":
		if !s.initiated {
			return nil, mongo.CommandError{Code: 94, Name: "NotYetInitialized", Message: "no replset config has been received"}
		}
		return reply(bson.D{{Key: "set", Value: "rs0"}})
	case "replSetInitiate":
		if s.initiated {
			return nil, mongo.CommandError{Code: 23, Name: "AlreadyInitialized", Message: "already initialized"}
		}
		s.initiated = true
		return reply(nil)
	case "hello":
		primary := false
		if s.initiated {
			s.hellos++
			primary = s.hellos > 2 && member == "m-1:27017"
		}
		return reply(bson.D{{Key: "isWritablePrimary", Value: primary}, {Key: "setName", Value: "rs0"}})
	case "usersInfo":
		user := cmd[0].Value.(bson.D)[0].Value.(string)
		users := bson.A{}
		if u, ok := s.users[user]; ok {
			users = append(users, u)
		}
		return reply(bson.D{{Key: "users", Value: users}})
	case "createUser", "updateUser":
		user := cmd[0].Value.(string)
		if _, exists := s.users[user]; exists == (name == "createUser") {
			return nil, mongo.CommandError{Code: 51003, Message: name + " " + user + ": wrong existence"}
		}
		s.users[user] = cmd
		return reply(nil)
	}
	return nil, fmt.Errorf("unhandled %s", name)
}

var members = []string{"m-0:27017", "m-1:27017", "m-2:27017"}

var users = []User{
	{Name: "consumer", Password: "pw-consumer", Roles: []Role{{"readWrite", "tally"}}},
	{Name: "api", Password: "pw-api", Roles: []Role{{"read", "tally"}}},
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSetupFormsTheSetAndKeepsTheUsers(t *testing.T) {
	s := &server{t: t, down: map[string]int{"m-2:27017": 3}, users: map[string]bson.D{}}
	cfg := Config{Members: members, ReplicaSet: "rs0", Users: users, Poll: time.Millisecond}
	if err := Run(context.Background(), s, cfg, quiet()); err != nil {
		t.Fatal(err)
	}
	first := slices.Clone(s.sent)
	// Every member answered before anything else; the set is initiated on the first member once;
	// the users are made on the primary.
	want := []string{"m-2:27017 ping", "m-0:27017 replSetGetStatus", "m-0:27017 replSetInitiate",
		"m-1:27017 usersInfo", "m-1:27017 createUser", "m-1:27017 usersInfo", "m-1:27017 createUser"}
	if !inOrder(first, want) || strings.Count(strings.Join(first, ","), "replSetInitiate") != 1 {
		t.Errorf("first run sent %v, want in order %v", first, want)
	}
	for _, u := range users {
		got := s.users[u.Name]
		if got == nil || got[1].Value != u.Password {
			t.Errorf("user %s: %v", u.Name, got)
		}
	}

	// Again, with the consumer's password changed (a rotated Secret): no second initiate, both
	// users updated, the new password set.
	s.sent = nil
	cfg.Users = slices.Clone(users)
	cfg.Users[0].Password = "pw-rotated"
	if err := Run(context.Background(), s, cfg, quiet()); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(s.sent, ",")
	if strings.Contains(joined, "replSetInitiate") || strings.Contains(joined, "createUser") || strings.Count(joined, "updateUser") != 2 {
		t.Errorf("second run sent %v, want no initiate and two updateUser", s.sent)
	}
	if got := s.users["consumer"][1].Value; got != "pw-rotated" {
		t.Errorf("the consumer's password after the rerun: %v", got)
	}
}

// A set initiated meanwhile by another run (replSetInitiate answers AlreadyInitialized) is fine.
func TestSetupToleratesAnInitiateRace(t *testing.T) {
	s := &raceServer{server: server{t: t, users: map[string]bson.D{}}}
	if err := Run(context.Background(), s, Config{Members: members, ReplicaSet: "rs0", Poll: time.Millisecond}, quiet()); err != nil {
		t.Fatal(err)
	}
}

type raceServer struct{ server }

func (r *raceServer) Run(ctx context.Context, member string, cmd bson.D) (bson.Raw, error) {
	if cmd[0].Key == "replSetInitiate" && !r.initiated {
		r.initiated = true // the other run's
	}
	return r.server.Run(ctx, member, cmd)
}

// A server without replica sets or user commands (the tests' FerretDB): pings only.
func TestSetupWithoutReplicaSetOrUsers(t *testing.T) {
	s := &server{t: t, users: map[string]bson.D{}}
	if err := Run(context.Background(), s, Config{Members: members[:1], Poll: time.Millisecond}, quiet()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.sent, []string{"m-0:27017 ping"}) {
		t.Errorf("sent %v, want one ping", s.sent)
	}
}

// Waiting ends with the context, naming what it waited for.
func TestSetupGivesUpWithTheContext(t *testing.T) {
	s := &server{t: t, down: map[string]int{"m-0:27017": 1 << 30}, users: map[string]bson.D{}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := Run(ctx, s, Config{Members: members, ReplicaSet: "rs0", Poll: time.Millisecond}, quiet())
	if err == nil || !strings.Contains(err.Error(), "member m-0:27017") {
		t.Errorf("err = %v, want waiting for member m-0:27017", err)
	}
}

// The checker itself refuses what the old mongosh script sent and other shapes MongoDB rejects.
func TestDocumentedShapesRefuseMalformedCommands(t *testing.T) {
	for name, cmd := range map[string]bson.D{
		"createUser without pwd": {{Key: "createUser", Value: "api"}, {Key: "roles", Value: bson.A{}}},
		"createUser with a spec document as its name (mongosh's createUser(user, spec))": {
			{Key: "createUser", Value: bson.D{{Key: "pwd", Value: "x"}}}, {Key: "pwd", Value: "x"}, {Key: "roles", Value: bson.A{}}},
		"a role as a bare string":   {{Key: "createUser", Value: "api"}, {Key: "pwd", Value: "x"}, {Key: "roles", Value: bson.A{"read"}}},
		"an undocumented field":     {{Key: "updateUser", Value: "api"}, {Key: "password", Value: "x"}},
		"members without hosts":     {{Key: "replSetInitiate", Value: bson.D{{Key: "_id", Value: "rs0"}, {Key: "members", Value: bson.A{bson.D{{Key: "_id", Value: int32(0)}}}}}}},
		"a set without a name":      {{Key: "replSetInitiate", Value: bson.D{{Key: "members", Value: bson.A{}}}}},
		"an unknown command":        {{Key: "createRole", Value: "x"}},
		"the command not the first": {{Key: "pwd", Value: "x"}, {Key: "createUser", Value: "api"}},
	} {
		if _, err := checkCommand(cmd); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, cmd := range []bson.D{InitiateCommand("rs0", members), UserCommand(users[0], false), UserCommand(users[1], true)} {
		if _, err := checkCommand(cmd); err != nil {
			t.Errorf("%v: %v", cmd, err)
		}
	}
}

// inOrder reports whether want occurs in got as a subsequence.
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
