package amqpflags

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

func TestFlagsOverrideEnvironment(t *testing.T) {
	var got eventbus.TLSFiles
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddTLS(fs, &got)
	if err := fs.Parse([]string{"--amqp-tls-ca-file", "/flag/ca.pem", "--amqp-tls-server-name", "flag.example"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AMQP_TLS_CA_FILE": "/env/ca.pem", "AMQP_TLS_CERT_FILE": "/env/c.pem",
		"AMQP_TLS_KEY_FILE": "/env/k.pem", "AMQP_TLS_SERVER_NAME": "env.example"}
	TLSFromEnv(fs, func(k string) string { return env[k] }, &got)
	want := eventbus.TLSFiles{CAFile: "/flag/ca.pem", CertFile: "/env/c.pem", KeyFile: "/env/k.pem", ServerName: "flag.example"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
