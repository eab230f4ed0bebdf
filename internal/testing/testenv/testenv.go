// Package testenv connects tests to the private servers that
// scripts/with-servers.sh starts on loopback for `make test`, `make demo`
// and `make bench`.
//
// The scripts export one environment variable per server, for example
// HYPERFLOW_TEST_AMQP_URL for the RabbitMQ broker, and set
// HYPERFLOW_TEST_REQUIRE_SERVERS=1. A test asks for the server it needs:
//
//	url := testenv.AMQPURL(t)
//
// When the variable is unset the test is skipped (plain `go test`), unless
// HYPERFLOW_TEST_REQUIRE_SERVERS is true, in which case it fails: under
// `make test` a missing server is an error, never a silent skip.
package testenv

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

const (
	// AMQPURLVar holds the private broker's URL, e.g.
	// amqp://guest:guest@127.0.0.1:40641/.
	AMQPURLVar = "HYPERFLOW_TEST_AMQP_URL"
	// RedisURLVar holds the private Redis server's URL, e.g.
	// redis://127.0.0.1:40642 (scripts/redis.sh, with-servers.sh --redis).
	RedisURLVar = "HYPERFLOW_TEST_REDIS_URL"
	// RequireVar, when true, turns a missing server into a test failure.
	RequireVar = "HYPERFLOW_TEST_REQUIRE_SERVERS"
)

// AMQPURL returns the private broker's URL from HYPERFLOW_TEST_AMQP_URL.
// When it is unset, it calls t.Fatal if HYPERFLOW_TEST_REQUIRE_SERVERS=1
// (make test must not skip), else t.Skip with a message saying to run
// `make test`.
func AMQPURL(t testing.TB) string {
	t.Helper()
	return Require(t, AMQPURLVar)
}

// RedisURL returns the private Redis server's URL from
// HYPERFLOW_TEST_REDIS_URL, or skips or fails the test as AMQPURL does.
func RedisURL(t testing.TB) string {
	t.Helper()
	return Require(t, RedisURLVar)
}

// Require is AMQPURL for any variable, e.g.
// Require(t, "HYPERFLOW_TEST_S3_ENDPOINT"): it returns the variable's value
// or skips or fails the test as described in the package documentation.
func Require(t testing.TB, name string) string {
	t.Helper()
	value := os.Getenv(name)
	switch act, msg := decide(value, os.Getenv(RequireVar)); act {
	case actionFail:
		t.Fatalf("%s %s", name, msg)
	case actionSkip:
		t.Skipf("%s %s", name, msg)
	}
	return strings.TrimSpace(value)
}

// action is what Require does with a variable.
type action int

const (
	actionUse  action = iota // the server is there: return the value
	actionSkip               // no server, not required: skip the test
	actionFail               // no server, but required: fail the test
)

func (a action) String() string {
	switch a {
	case actionUse:
		return "use"
	case actionSkip:
		return "skip"
	case actionFail:
		return "fail"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// decide is the pure decision behind Require: value is the server variable,
// require is HYPERFLOW_TEST_REQUIRE_SERVERS. The message (empty for
// actionUse) is meant to follow the variable's name.
func decide(value, require string) (action, string) {
	if strings.TrimSpace(value) != "" {
		return actionUse, ""
	}
	// "1", "true", "TRUE", ... mean required; unset, "0", "false" or
	// anything unparsable mean not required.
	if req, err := strconv.ParseBool(strings.TrimSpace(require)); err == nil && req {
		return actionFail, "is not set although " + RequireVar + "=" + require +
			": the private test server was not started (run the tests via `make test`, " +
			"which uses scripts/with-servers.sh)"
	}
	return actionSkip, "is not set: skipping a test that needs a private test server; " +
		"run `make test` to start one"
}
